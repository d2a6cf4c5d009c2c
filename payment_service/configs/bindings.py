"""Which payment config each site of a tenant pays through: at most one per channel (wechat, alipay).

The channel follows from the config's mode. Binding a channel that is already bound replaces the old
binding in the same transaction. A unique constraint on (tenant, site, channel) holds the rule under
concurrent requests; the config row is locked while a binding is made, so a deletion of that config
waits for the binding (and then refuses, 409) or the binding waits for the deletion (and then answers 404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payment_service.channels import CHANNEL_BY_MODE
from payment_service.configs.center import get_config
from payment_service.configs.history import record_change
from payment_service.models import PaymentConfig, SiteBinding
from shared.auth import Principal
from shared.db import isoformat, utcnow
from shared.driver import Lookup
from shared.envelope import BadRequestError, ConflictError, NotFoundError
from shared.ids import new_id
from shared.transactions import atomic

SITE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHANNELS = ("wechat", "alipay")
CHANNEL_NAMES = {"wechat": "微信支付", "alipay": "支付宝支付"}


@dataclass(frozen=True)
class BoundConfig:
    binding: SiteBinding
    config: PaymentConfig


@dataclass(frozen=True)
class BindResult:
    binding: SiteBinding
    config: PaymentConfig
    replaced_binding_id: str | None


def check_site_id(site_id: str) -> str:
    """Sites are the tenant's own ids (there is no site registry), so only their shape is checked."""
    if not SITE_ID.match(site_id or ""):
        raise BadRequestError(
            "网点 ID 格式错误: 1 到 64 位字母、数字、下划线或连字符",
            {"errors": {"site_id": ["格式错误"]}},
        )
    return site_id


def channel_of(mode: str) -> str:
    return CHANNEL_BY_MODE[mode]


def bind_site(session: Session, actor: Principal, site_id: str, config_id: str) -> BindResult:
    """Bind ``config_id`` to the site on its channel, replacing what that channel was bound to.

    Binding the config the channel is already bound to changes nothing and answers the existing binding.
    Two binds racing on an unbound channel both try to insert; the unique constraint stops the second,
    which retries once and then replaces the first, so the site ends with exactly one binding.
    """
    check_site_id(site_id)
    try:
        return _bind_once(session, actor, site_id, config_id)
    except IntegrityError:
        pass
    try:
        return _bind_once(session, actor, site_id, config_id)
    except IntegrityError:
        raise ConflictError("网点绑定冲突: 另一个请求正在修改该网点的绑定,请重试") from None


def list_site_bindings(session: Session, tenant_id: str, site_id: str) -> list[BoundConfig]:
    check_site_id(site_id)
    rows = session.execute(
        select(SiteBinding, PaymentConfig)
        .join(PaymentConfig, PaymentConfig.id == SiteBinding.config_id)
        .where(SiteBinding.tenant_id == tenant_id, SiteBinding.site_id == site_id)
        .order_by(SiteBinding.channel.desc())  # wechat first, then alipay, as the contract lists them
    ).all()
    return [BoundConfig(binding, config) for binding, config in rows]


def unbind_site(session: Session, actor: Principal, site_id: str, binding_id: str) -> SiteBinding:
    """Remove one binding of the site; the site's other channel stays bound."""
    check_site_id(site_id)
    with atomic(session):
        binding = session.scalar(
            select(SiteBinding)
            .where(
                SiteBinding.id == binding_id,
                SiteBinding.tenant_id == actor.tenant_id,
                SiteBinding.site_id == site_id,
            )
            .with_for_update()
        )
        if binding is None:
            raise NotFoundError("网点绑定不存在")
        session.delete(binding)
        record_change(session, actor, binding.config_id, "unbind", _binding_changes(binding, removed=True))
    return binding


_sites = SiteBinding.__table__
_configs = PaymentConfig.__table__
# Built once: every order is routed with it. The config's columns are those a channel client is made of.
_ROUTE = Lookup(
    select(
        _sites.c.id.label("binding_id"),
        _configs.c.id,
        _configs.c.mode,
        _configs.c.status,
        _configs.c.params,
        _configs.c.secrets_sealed,
        _configs.c.secret_key_id,
    )
    .select_from(_sites.join(_configs, _configs.c.id == _sites.c.config_id))
    .where(
        _sites.c.tenant_id == bindparam("tenant_id"),
        _sites.c.site_id == bindparam("site_id"),
        _sites.c.channel == bindparam("channel"),
    )
)


@dataclass(frozen=True)
class OrderRoute:
    """The binding an order goes through and its config's row (``id``, ``mode``, ``status``, ``params``,
    ``secrets_sealed``, ``secret_key_id``)."""

    binding_id: str
    config: Row


def get_binding_for_order(session: Session, tenant_id: str, site_id: str, channel: str) -> OrderRoute:
    """The binding and config an order of ``site_id`` on ``channel`` goes through, or the 400 to answer.

    Not bound → 「该网点暂不支持支付宝支付」 (or 微信支付); bound to a disabled config → 400 saying so.
    """
    if channel not in CHANNELS:
        raise BadRequestError("不支持的支付渠道: 只支持 wechat 或 alipay")
    check_site_id(site_id)
    rows = _ROUTE.rows(session, {"tenant_id": tenant_id, "site_id": site_id, "channel": channel})
    row = rows[0] if rows else None
    if row is None:
        raise BadRequestError(f"该网点暂不支持{CHANNEL_NAMES[channel]}")
    if row.status != "enabled":
        raise BadRequestError(f"该网点的{CHANNEL_NAMES[channel]}配置已停用,暂时无法支付")
    return OrderRoute(row.binding_id, row)


def binding_view(binding: SiteBinding, config: PaymentConfig) -> dict[str, Any]:
    return {
        "binding_id": binding.id,
        "channel": binding.channel,
        "config_id": config.id,
        "config_name": config.name,
        "mode": config.mode,
        "bound_at": isoformat(binding.bound_at),
    }


def bind_result_view(result: BindResult) -> dict[str, Any]:
    return {**binding_view(result.binding, result.config), "replaced_binding_id": result.replaced_binding_id}


def _bind_once(session: Session, actor: Principal, site_id: str, config_id: str) -> BindResult:
    with atomic(session):
        config = get_config(session, actor.tenant_id, config_id, for_update=True)
        if config.status != "enabled":
            raise BadRequestError("支付配置已停用,不能绑定;请先启用")
        channel = channel_of(config.mode)
        existing = _find_binding(session, actor.tenant_id, site_id, channel)
        if existing is not None and existing.config_id == config.id:
            return BindResult(existing, config, None)
        replaced_id = None
        if existing is not None:
            replaced_id = existing.id
            session.delete(existing)
            session.flush()
            changes = {
                **_binding_changes(existing, removed=True),
                "replaced_by_config_id": {"old": None, "new": config.id},
            }
            record_change(session, actor, existing.config_id, "unbind", changes)
        binding = SiteBinding(
            id=new_id("BIND"),
            tenant_id=actor.tenant_id,
            site_id=site_id,
            channel=channel,
            config_id=config.id,
            bound_at=utcnow(),
        )
        session.add(binding)
        session.flush()
        changes = _binding_changes(binding, removed=False)
        if replaced_id:
            changes["replaced_binding_id"] = {"old": None, "new": replaced_id}
        record_change(session, actor, config.id, "bind", changes)
    return BindResult(binding, config, replaced_id)


def _find_binding(session: Session, tenant_id: str, site_id: str, channel: str) -> SiteBinding | None:
    """The channel's current binding, locked: a concurrent replace waits for ours, then finds it gone."""
    return session.scalar(
        select(SiteBinding)
        .where(
            SiteBinding.tenant_id == tenant_id, SiteBinding.site_id == site_id, SiteBinding.channel == channel
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _binding_changes(binding: SiteBinding, removed: bool) -> dict[str, dict[str, Any]]:
    values = {"site_id": binding.site_id, "channel": binding.channel, "binding_id": binding.id}
    if removed:
        return {name: {"old": value, "new": None} for name, value in values.items()}
    return {name: {"old": None, "new": value} for name, value in values.items()}
