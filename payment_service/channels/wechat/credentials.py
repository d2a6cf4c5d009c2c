"""One merchant's WeChat Pay v3 credentials, for either mode: partner (wechat_split) or direct merchant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from payment_service.channels.keys import load_private_key, load_public_key

__all__ = ["API_V3_KEY_BYTES", "WechatCredentials", "WechatMode"]

API_V3_KEY_BYTES = 32

WechatMode = Literal["wechat_split", "wechat_direct"]


@dataclass(frozen=True)
class WechatCredentials:
    """One merchant's WeChat Pay v3 credentials.

    `mch_id` is whoever signs the requests: the service provider (sp_mchid) in wechat_split mode, the
    merchant itself in wechat_direct mode. `wechatpay_public_key` may also be a platform certificate, with
    its serial number as `wechatpay_public_key_id`. Keys are parsed eagerly so a bad config fails here.
    """

    mch_id: str
    app_id: str
    api_key: str = field(repr=False)
    merchant_serial_no: str
    merchant_private_key: str = field(repr=False)
    wechatpay_public_key_id: str
    wechatpay_public_key: str = field(repr=False)
    sub_mch_id: str | None = None
    sub_app_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("mch_id", "app_id", "merchant_serial_no", "wechatpay_public_key_id"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if len(self.api_key.encode("utf-8")) != API_V3_KEY_BYTES:
            raise ValueError(f"api_key (the APIv3 key) must be exactly {API_V3_KEY_BYTES} bytes")
        load_private_key(self.merchant_private_key)
        load_public_key(self.wechatpay_public_key)

    @classmethod
    def from_params(cls, mode: WechatMode, params: Mapping[str, Any]) -> WechatCredentials:
        """Build credentials from a payment config's `params`, named as the config API names them."""
        if mode == "wechat_split":
            mch_id, sub_mch_id = params.get("service_mch_id"), params.get("sub_mch_id")
            if not sub_mch_id:
                raise ValueError("sub_mch_id is required in wechat_split mode")
        elif mode == "wechat_direct":
            mch_id, sub_mch_id = params.get("mch_id"), None
        else:
            raise ValueError(f"not a WeChat Pay mode: {mode!r}")
        return cls(
            mch_id=str(mch_id or ""),
            app_id=str(params.get("app_id") or ""),
            api_key=str(params.get("api_key") or ""),
            merchant_serial_no=str(params.get("merchant_serial_no") or ""),
            merchant_private_key=str(params.get("merchant_private_key") or ""),
            wechatpay_public_key_id=str(params.get("wechatpay_public_key_id") or ""),
            wechatpay_public_key=str(params.get("wechatpay_public_key") or ""),
            sub_mch_id=str(sub_mch_id) if sub_mch_id else None,
            sub_app_id=str(params["sub_app_id"])
            if mode == "wechat_split" and params.get("sub_app_id")
            else None,
        )
