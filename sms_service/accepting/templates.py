"""Message templates of a tenant: ``${name}`` placeholders, sign name and the upstream code per provider."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import fetch_page, utcnow
from shared.envelope import BadRequestError, NotFoundError
from shared.ids import new_id
from shared.transactions import atomic
from sms_service.accepting import send_profiles
from sms_service.accepting.send_profiles import SendProfile
from sms_service.models import MARKETING, NOTIFICATION, TEMPLATE_ENABLED, Template

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")
# A "${" that does not open a well-formed placeholder.
BROKEN_PLACEHOLDER = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]{0,31}\})")
KNOWN_PROVIDERS = ("aliyun", "tencent", "sandbox")
# How a marketing text tells the mobile to opt out, with the upstreams' reply keywords; Aliyun requires it at
# the very end of the content.
OPT_OUT_INSTRUCTIONS = ("回T退订", "回TD退订", "回N退订", "拒收请回复R")


def variables_of(content: str) -> list[str]:
    """The placeholder names of ``content`` in order of first appearance (Tencent binds them by position)."""
    names: list[str] = []
    for name in PLACEHOLDER.findall(content):
        if name not in names:
            names.append(name)
    return names


def check_content(content: str) -> None:
    if BROKEN_PLACEHOLDER.search(content):
        raise BadRequestError(
            "模板内容中的变量格式不正确, 应为 ${变量名} (字母、数字、下划线, 以字母或下划线开头)",
            data={"errors": {"content": ["变量格式不正确"]}},
        )


def check_category(category: str, content: str) -> None:
    """A marketing template must end with an opt-out instruction (OPT_OUT_INSTRUCTIONS)."""
    if category == MARKETING and not content.rstrip().endswith(OPT_OUT_INSTRUCTIONS):
        shown = "、".join(OPT_OUT_INSTRUCTIONS)
        raise BadRequestError(
            f"营销类模板内容须以退订方式结尾 ({shown} 之一)",
            data={"errors": {"content": [f"须以 {shown} 之一结尾"]}},
        )


def check_provider_codes(codes: dict[str, Any]) -> dict[str, str]:
    unknown = sorted(set(codes) - set(KNOWN_PROVIDERS))
    if unknown:
        raise BadRequestError(
            f"未知的短信渠道: {', '.join(unknown)}",
            data={"errors": {"provider_codes": [f"未知的渠道 {name}" for name in unknown]}},
        )
    return {name: str(code) for name, code in codes.items()}


def create_template(session: Session, tenant_id: str, fields: dict[str, Any]) -> Template:
    check_content(fields["content"])
    category = fields.get("category") or NOTIFICATION
    check_category(category, fields["content"])
    now = utcnow()
    template = Template(
        id=new_id("TMPL"),
        tenant_id=tenant_id,
        name=fields["name"],
        content=fields["content"],
        variables=variables_of(fields["content"]),
        sign_name=fields["sign_name"],
        provider_codes=check_provider_codes(fields.get("provider_codes") or {}),
        category=category,
        status=fields.get("status") or TEMPLATE_ENABLED,
        created_at=now,
        updated_at=now,
    )
    with atomic(session):
        session.add(template)
    return template


def get_template(session: Session, tenant_id: str, template_id: str) -> Template:
    """The tenant's template; another tenant's, a deleted or an unknown one is 404 alike."""
    template = session.scalar(
        select(Template).where(
            Template.id == template_id, Template.tenant_id == tenant_id, Template.deleted_at.is_(None)
        )
    )
    if template is None:
        raise NotFoundError("模板不存在", data={"template_id": template_id})
    return template


def list_templates(
    session: Session, tenant_id: str, page: int, size: int, status: str | None = None
) -> tuple[list[Template], int]:
    conditions = [Template.tenant_id == tenant_id, Template.deleted_at.is_(None)]
    if status:
        conditions.append(Template.status == status)
    return fetch_page(session, Template, conditions, page, size)


def update_template(session: Session, tenant_id: str, template_id: str, fields: dict[str, Any]) -> Template:
    """Change any of the fields; a field refused after another was changed leaves the template as it was."""
    with atomic(session):
        template = get_template(session, tenant_id, template_id)
        if "content" in fields:
            check_content(fields["content"])
            template.content = fields["content"]
            template.variables = variables_of(fields["content"])
        if "provider_codes" in fields:
            template.provider_codes = check_provider_codes(fields["provider_codes"] or {})
        for name in ("name", "sign_name", "status", "category"):
            if name in fields:
                setattr(template, name, fields[name])
        check_category(template.category, template.content)
        template.updated_at = utcnow()
    send_profiles.forget(tenant_id, template_id)
    return template


def delete_template(session: Session, tenant_id: str, template_id: str) -> None:
    with atomic(session):
        template = get_template(session, tenant_id, template_id)
        template.deleted_at = utcnow()
        template.updated_at = template.deleted_at
    send_profiles.forget(tenant_id, template_id)


def check_variables(
    template: Template | SendProfile, variables: dict[str, Any], max_length: int
) -> dict[str, str]:
    """The template's variables as strings, in template order; 400 naming what is missing or too long."""
    missing = [name for name in template.variables if variables.get(name) in (None, "")]
    if missing:
        raise BadRequestError(
            f"缺少模板变量: {', '.join(missing)}",
            data={"errors": {"variables": {name: ["缺少该变量"] for name in missing}}, "missing": missing},
        )
    values: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for name in template.variables:
        value = variables[name]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            errors[name] = ["变量值必须是字符串或数字"]
            continue
        text = str(value)
        if len(text) > max_length:
            errors[name] = [f"变量值不能超过 {max_length} 个字符"]
            continue
        values[name] = text
    if errors:
        raise BadRequestError(f"模板变量不合法: {', '.join(errors)}", data={"errors": {"variables": errors}})
    return values
