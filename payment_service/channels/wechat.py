"""WeChat Pay API v3 for mini-program (JSAPI) payments, service-provider (partner) and direct merchant modes.

Written on requests + cryptography from the v3 protocol: requests are signed over the exact bytes sent,
every 2xx answer and every notification is verified with the WeChat Pay public key before it is read.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payment_service.channels.base import (
    ChannelError,
    CreatedOrder,
    HttpChannel,
    NotificationRejected,
    NotifyReply,
    OrderRequest,
    OrderState,
    PaidNotice,
    PaymentChannel,
    QueriedOrder,
)
from payment_service.channels.keys import load_private_key, load_public_key

__all__ = [
    "API_BASE_URL",
    "ProfitSharingOrder",
    "ProfitSharingReceiverResult",
    "SharingReceiver",
    "SharingTransfer",
    "WechatCredentials",
    "WechatMode",
    "WechatPayClient",
    "notification_key_id",
    "split_amounts",
]

API_BASE_URL = "https://api.mch.weixin.qq.com"
SIGNATURE_SCHEME = "WECHATPAY2-SHA256-RSA2048"
USER_AGENT = "laundry-payment-service/1.0 (WeChatPay-APIv3; python-requests)"
# WeChat's own SDKs refuse signed messages whose timestamp is more than five minutes off.
MAX_CLOCK_SKEW_SECONDS = 300
BEIJING = timezone(timedelta(hours=8), "CST")
API_V3_KEY_BYTES = 32

WechatMode = Literal["wechat_split", "wechat_direct"]
_FAIL_BODY = json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False).encode()

# https://pay.weixin.qq.com trade_state values, read as our order states. REFUND means it was paid.
_TRADE_STATES: dict[str, OrderState] = {
    "SUCCESS": "paid",
    "REFUND": "paid",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "ACCEPT": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "failed",
}


def _unix_time() -> int:
    return int(time.time())


def _new_nonce() -> str:
    return secrets.token_hex(16).upper()


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


@dataclass(frozen=True)
class SharingReceiver:
    """A profit-sharing receiver to register once per sub-merchant before splitting to it.

    WeChat requires `name` (the full legal merchant name) for MERCHANT_ID receivers; it is sent encrypted.
    """

    account: str
    name: str | None = None
    type: str = "MERCHANT_ID"
    relation_type: str = "PARTNER"
    custom_relation: str | None = None


@dataclass(frozen=True)
class SharingTransfer:
    """One line of a profit-sharing order: `amount_fen` moves from the sub-merchant to `account`."""

    account: str
    amount_fen: int
    description: str
    type: str = "MERCHANT_ID"
    name: str | None = None


@dataclass(frozen=True)
class ProfitSharingReceiverResult:
    account: str
    type: str
    amount_fen: int
    description: str
    result: str  # PENDING | SUCCESS | CLOSED
    fail_reason: str | None
    detail_id: str | None


@dataclass(frozen=True)
class ProfitSharingOrder:
    """A profit-sharing order as WeChat reports it. It is asynchronous: PROCESSING until FINISHED."""

    out_order_no: str
    order_id: str | None
    transaction_id: str | None
    state: str
    receivers: tuple[ProfitSharingReceiverResult, ...]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> ProfitSharingOrder:
        return cls(
            out_order_no=str(data.get("out_order_no", "")),
            order_id=data.get("order_id"),
            transaction_id=data.get("transaction_id"),
            state=str(data.get("state", "")),
            receivers=tuple(
                ProfitSharingReceiverResult(
                    account=str(item.get("account", "")),
                    type=str(item.get("type", "")),
                    amount_fen=int(item.get("amount", 0)),
                    description=str(item.get("description", "")),
                    result=str(item.get("result", "")),
                    fail_reason=item.get("fail_reason"),
                    detail_id=item.get("detail_id"),
                )
                for item in data.get("receivers") or ()
            ),
            raw=dict(data),
        )


R = TypeVar("R", bound=Mapping[str, Any])


def split_amounts(total_fen: int, receivers: Sequence[R], sub_mch_id: str | None) -> list[tuple[R, int]]:
    """Turn profit-sharing ratios into fen for one paid order; deterministic and never over-transferring.

    Each receiver is a mapping with `merchant_id` and `ratio`. Ratios are read as exact decimals (a float
    goes through str(), so 0.15 is 0.15, not 0.1499999...). A receiver whose merchant_id is `sub_mch_id`
    is the sub-merchant's own share: it stays where the money already is and is never transferred. Every
    other receiver gets floor(total_fen × ratio) fen; receivers that come to 0 fen are skipped because
    WeChat refuses zero-amount lines. Whatever the floors leave over also stays with the sub-merchant.
    Returns (receiver, fen) pairs in the receivers' order.
    """
    if isinstance(total_fen, bool) or not isinstance(total_fen, int) or total_fen < 0:
        raise ValueError("total_fen must be a non-negative integer")
    ratios = [_exact_ratio(receiver.get("ratio")) for receiver in receivers]
    if sum(ratios, Decimal(0)) > 1:
        raise ValueError("profit-sharing ratios add up to more than 1")
    transfers: list[tuple[R, int]] = []
    for receiver, ratio in zip(receivers, ratios, strict=True):
        if sub_mch_id is not None and str(receiver.get("merchant_id")) == str(sub_mch_id):
            continue
        fen = int((Decimal(total_fen) * ratio).to_integral_value(rounding=ROUND_FLOOR))
        if fen > 0:
            transfers.append((receiver, fen))
    return transfers


def _exact_ratio(value: Any) -> Decimal:
    try:
        ratio = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"ratio {value!r} is not a number") from None
    if isinstance(value, bool) or not ratio.is_finite() or not 0 < ratio <= 1:
        raise ValueError(f"ratio {value!r} must be in (0, 1]")
    return ratio


def notification_key_id(headers: Mapping[str, str]) -> str | None:
    """Which WeChat Pay key signed a notification (its Wechatpay-Serial), before anything is verified.

    The notify URL is shared by every config, so this is how the caller narrows down the configs that
    can verify and decrypt it: those whose wechatpay_public_key_id matches.
    """
    return _lower_keys(headers).get("wechatpay-serial") or None


def _amount_total(data: Mapping[str, Any]) -> Any:
    amount = data.get("amount")
    return amount.get("total") if isinstance(amount, dict) else None


class _SignatureInvalid(Exception):
    pass


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in headers.items()}


def _rfc3339_beijing(moment: datetime) -> str:
    """WeChat reads time_expire in RFC 3339; naive datetimes are UTC, as everywhere in this service."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def _parse_rfc3339(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return None


class WechatPayClient(HttpChannel, PaymentChannel):
    """WeChat Pay v3 for one merchant configuration.

    In wechat_split mode the service provider signs and the sub-merchant (sub_mchid) receives the money;
    in wechat_direct mode the merchant does both.
    """

    name = "wechat"

    def __init__(
        self,
        credentials: WechatCredentials,
        mode: WechatMode,
        base_url: str = API_BASE_URL,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(timeout=timeout, session=session)
        if mode not in ("wechat_split", "wechat_direct"):
            raise ValueError(f"not a WeChat Pay mode: {mode!r}")
        if mode == "wechat_split" and not credentials.sub_mch_id:
            raise ValueError("wechat_split mode needs sub_mch_id")
        self.credentials = credentials
        self.mode = mode
        self.partner = mode == "wechat_split"
        self.base_url = base_url.rstrip("/")
        self._private_key = load_private_key(credentials.merchant_private_key)
        self._wechatpay_key = load_public_key(credentials.wechatpay_public_key)

    # -- payments ---------------------------------------------------------------------------------------

    @property
    def paying_app_id(self) -> str:
        """The app that opens the cashier: the sub-merchant's own mini-program if configured."""
        return self.credentials.sub_app_id or self.credentials.app_id

    def create_jsapi_order(self, order: OrderRequest) -> CreatedOrder:
        """Place a JSAPI/mini-program order and sign the parameters wx.requestPayment needs."""
        c = self.credentials
        if self.partner:
            body: dict[str, Any] = {"sp_appid": c.app_id, "sp_mchid": c.mch_id}
            if c.sub_app_id:
                body["sub_appid"] = c.sub_app_id
            body["sub_mchid"] = c.sub_mch_id
            path = "/v3/pay/partner/transactions/jsapi"
            # sub_openid belongs to the sub-merchant's app, sp_openid to the service provider's.
            payer = {"sub_openid" if c.sub_app_id else "sp_openid": order.payer_id}
        else:
            body = {"appid": c.app_id, "mchid": c.mch_id}
            path = "/v3/pay/transactions/jsapi"
            payer = {"openid": order.payer_id}
        body.update(
            description=order.description, out_trade_no=order.transaction_id, notify_url=order.notify_url
        )
        if order.expire_at is not None:
            body["time_expire"] = _rfc3339_beijing(order.expire_at)
        body["amount"] = {"total": order.amount_fen, "currency": "CNY"}
        body["payer"] = payer
        if order.profit_sharing:
            # Without this flag WeChat refuses to split the order later ("非分账订单不支持分账").
            body["settle_info"] = {"profit_sharing": True}

        result = self._request("POST", path, body=body)
        prepay_id = result.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise ChannelError("BAD_RESPONSE", "WeChat Pay answered without a prepay_id", 200)
        return CreatedOrder(pay_params=self.pay_params(prepay_id), channel_order_ref=prepay_id, raw=result)

    def pay_params(self, prepay_id: str) -> dict[str, str]:
        """wx.requestPayment parameters; paySign covers appId, timeStamp, nonceStr, package (not signType)."""
        params = {
            "appId": self.paying_app_id,
            "timeStamp": str(_unix_time()),
            "nonceStr": _new_nonce(),
            "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
        }
        message = "".join(f"{params[key]}\n" for key in ("appId", "timeStamp", "nonceStr", "package"))
        params["paySign"] = self._sign(message.encode("utf-8"))
        return params

    def query_order(self, out_trade_no: str) -> QueriedOrder:
        c = self.credentials
        segment = quote(out_trade_no, safe="")
        if self.partner:
            path = f"/v3/pay/partner/transactions/out-trade-no/{segment}"
            query = {"sp_mchid": c.mch_id, "sub_mchid": c.sub_mch_id}
        else:
            path = f"/v3/pay/transactions/out-trade-no/{segment}"
            query = {"mchid": c.mch_id}
        data = self._request("GET", path, query=query)
        trade_state = str(data.get("trade_state", ""))
        if trade_state not in _TRADE_STATES:
            raise ChannelError("BAD_RESPONSE", f"unknown trade_state {trade_state!r}", 200)
        return QueriedOrder(
            state=_TRADE_STATES[trade_state],
            channel_transaction_id=data.get("transaction_id"),
            amount_fen=_amount_total(data),
            paid_at=_parse_rfc3339(data.get("success_time")),
            trade_state=trade_state,
            raw=data,
        )

    def close_order(self, out_trade_no: str) -> None:
        c = self.credentials
        segment = quote(out_trade_no, safe="")
        if self.partner:
            path = f"/v3/pay/partner/transactions/out-trade-no/{segment}/close"
            body = {"sp_mchid": c.mch_id, "sub_mchid": c.sub_mch_id}
        else:
            path = f"/v3/pay/transactions/out-trade-no/{segment}/close"
            body = {"mchid": c.mch_id}
        self._request("POST", path, body=body)

    def create_order(self, order: OrderRequest) -> CreatedOrder:
        return self.create_jsapi_order(order)

    # -- notifications ----------------------------------------------------------------------------------

    def parse_notification(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime | None = None
    ) -> PaidNotice:
        """Verify, decrypt and read a payment notification. Pass the raw body bytes, never re-dumped JSON.

        Raises NotificationRejected for a bad or missing signature, a timestamp more than five minutes off,
        a resource that does not decrypt with our APIv3 key, or a notification for another merchant.
        """
        try:
            self._verify_signed_message(headers, raw_body, now)
        except _SignatureInvalid as exc:
            raise NotificationRejected(f"signature check failed: {exc}") from None
        try:
            payload = json.loads(raw_body)
            resource = payload["resource"]
            plaintext = self.decrypt_resource(resource)
            data = json.loads(plaintext)
        except NotificationRejected:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            raise NotificationRejected("notification body is not a WeChat Pay encrypted resource") from None
        if not isinstance(data, dict):
            raise NotificationRejected("decrypted resource is not an object")

        merchant_ids = self._merchant_ids(data)
        expected = (
            {"sp_mchid": self.credentials.mch_id, "sub_mchid": self.credentials.sub_mch_id}
            if self.partner
            else {"mchid": self.credentials.mch_id}
        )
        if any(merchant_ids.get(key) != value for key, value in expected.items()):
            raise NotificationRejected("notification is for another merchant")
        total = _amount_total(data)
        if isinstance(total, bool) or not isinstance(total, int) or not data.get("out_trade_no"):
            raise NotificationRejected("notification lacks out_trade_no or amount.total")
        trade_state = str(data.get("trade_state", ""))
        return PaidNotice(
            out_trade_no=str(data["out_trade_no"]),
            channel_transaction_id=data.get("transaction_id"),
            amount_fen=total,
            merchant_ids=merchant_ids,
            paid_at=_parse_rfc3339(data.get("success_time")),
            trade_state=trade_state,
            paid=trade_state == "SUCCESS",
            raw=data,
        )

    def decrypt_resource(self, resource: Mapping[str, Any]) -> str:
        """AEAD_AES_256_GCM with the APIv3 key; the nonce is the UTF-8 of the 12-character nonce string."""
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejected(f"unsupported resource algorithm {resource.get('algorithm')!r}")
        try:
            ciphertext = base64.b64decode(resource["ciphertext"], validate=True)
            plaintext = AESGCM(self.credentials.api_key.encode("utf-8")).decrypt(
                str(resource["nonce"]).encode("utf-8"),
                ciphertext,
                str(resource.get("associated_data") or "").encode("utf-8"),
            )
            return plaintext.decode("utf-8")
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise NotificationRejected("resource does not decrypt with this merchant's APIv3 key") from None

    def read_notification(self, headers: Mapping[str, str], body: bytes) -> PaidNotice:
        return self.parse_notification(headers, body)

    def notification_reply(self, accepted: bool) -> NotifyReply:
        """WeChat wants 204 with no body for success; any 4xx/5xx with code FAIL makes it redeliver."""
        if accepted:
            return NotifyReply(204, b"", None)
        return NotifyReply(400, _FAIL_BODY, "application/json")

    def _merchant_ids(self, data: Mapping[str, Any]) -> dict[str, str]:
        keys = ("sp_mchid", "sub_mchid", "sp_appid", "sub_appid") if self.partner else ("mchid", "appid")
        return {key: str(data[key]) for key in keys if data.get(key)}

    # -- profit sharing ---------------------------------------------------------------------------------

    def add_receiver(self, receiver: SharingReceiver) -> dict[str, Any]:
        """Register a receiver. Idempotent on WeChat's side: adding an existing receiver succeeds again."""
        body = self._sharing_scope()
        body.update(type=receiver.type, account=receiver.account)
        if receiver.name:
            body["name"] = self.encrypt_field(receiver.name)
        body["relation_type"] = receiver.relation_type
        if receiver.custom_relation:
            body["custom_relation"] = receiver.custom_relation
        return self._request("POST", "/v3/profitsharing/receivers/add", body=body)

    def create_profit_sharing(
        self,
        transaction_id: str,
        out_order_no: str,
        receivers: Sequence[SharingTransfer],
        unfreeze_unsplit: bool = True,
    ) -> ProfitSharingOrder:
        """Ask WeChat to split a paid order. Idempotent by out_order_no; the result comes asynchronously.

        unfreeze_unsplit=True releases whatever is not split to the sub-merchant in the same step.
        """
        body = self._sharing_scope()
        lines = []
        for transfer in receivers:
            line: dict[str, Any] = {"type": transfer.type, "account": transfer.account}
            if transfer.name:
                line["name"] = self.encrypt_field(transfer.name)
            line.update(amount=transfer.amount_fen, description=transfer.description)
            lines.append(line)
        body.update(
            transaction_id=transaction_id,
            out_order_no=out_order_no,
            receivers=lines,
            unfreeze_unsplit=unfreeze_unsplit,
        )
        return ProfitSharingOrder.from_response(self._request("POST", "/v3/profitsharing/orders", body=body))

    def query_profit_sharing(self, out_order_no: str, transaction_id: str) -> ProfitSharingOrder:
        query = {"sub_mchid": self.credentials.sub_mch_id} if self.partner else {}
        query["transaction_id"] = transaction_id
        path = f"/v3/profitsharing/orders/{quote(out_order_no, safe='')}"
        return ProfitSharingOrder.from_response(self._request("GET", path, query=query))

    def encrypt_field(self, plaintext: str) -> str:
        """Sensitive fields (receiver names) go RSA-OAEP(SHA-1)-encrypted under the WeChat Pay public key."""
        ciphertext = self._wechatpay_key.encrypt(
            plaintext.encode("utf-8"),
            padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
        )
        return base64.b64encode(ciphertext).decode("ascii")

    def _sharing_scope(self) -> dict[str, Any]:
        c = self.credentials
        body: dict[str, Any] = {"sub_mchid": c.sub_mch_id} if self.partner else {}
        body["appid"] = c.app_id
        if self.partner and c.sub_app_id:
            body["sub_appid"] = c.sub_app_id
        return body

    # -- the v3 protocol --------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        # Serialized once: these exact bytes are both signed and sent.
        data = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            # Asks WeChat to sign its answer with the public key rather than a platform certificate.
            "Wechatpay-Serial": self.credentials.wechatpay_public_key_id,
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        prepared = requests.Request(method, url, data=data, headers=headers).prepare()
        prepared.headers["Authorization"] = self._authorization(method, prepared.path_url, data or b"")

        response = self._send(prepared, f"wechat {method} {path}")
        if not 200 <= response.status_code < 300:
            raise self._error_from(response)
        try:
            self._verify_signed_message(response.headers, response.content, None)
        except _SignatureInvalid as exc:
            raise ChannelError(
                "BAD_SIGNATURE", f"response signature check failed: {exc}", response.status_code
            ) from None
        if not response.content:
            return {}
        try:
            result = json.loads(response.content)
        except ValueError:
            result = None
        if not isinstance(result, dict):
            raise ChannelError("BAD_RESPONSE", "WeChat Pay answered with something other than a JSON object")
        return result

    def _authorization(self, method: str, path_url: str, body: bytes) -> str:
        timestamp, nonce = str(_unix_time()), _new_nonce()
        message = f"{method}\n{path_url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = self._sign(message)
        return (
            f'{SIGNATURE_SCHEME} mchid="{self.credentials.mch_id}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",serial_no="{self.credentials.merchant_serial_no}"'
        )

    def _sign(self, message: bytes) -> str:
        signature = self._private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def _verify_signed_message(self, headers: Mapping[str, str], body: bytes, now: datetime | None) -> None:
        """Check Wechatpay-* headers over `TIMESTAMP\\nNONCE\\nBODY\\n`; responses and notifications alike."""
        fields = _lower_keys(headers)
        timestamp = fields.get("wechatpay-timestamp", "")
        nonce = fields.get("wechatpay-nonce", "")
        signature = fields.get("wechatpay-signature", "")
        serial = fields.get("wechatpay-serial", "")
        if not (timestamp and nonce and signature and serial):
            raise _SignatureInvalid("unsigned: Wechatpay-* signature headers missing")
        scheme = fields.get("wechatpay-signature-type")
        if scheme is not None and scheme != SIGNATURE_SCHEME:
            raise _SignatureInvalid(f"unsupported signature type {scheme!r}")
        if serial != self.credentials.wechatpay_public_key_id:
            raise _SignatureInvalid(f"signed by unknown key {serial!r}")
        if not timestamp.isdigit():
            raise _SignatureInvalid("malformed timestamp")
        current = (now or datetime.now(UTC)).timestamp()
        if abs(current - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
            raise _SignatureInvalid("timestamp more than five minutes off")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
            self._wechatpay_key.verify(
                raw_signature,
                f"{timestamp}\n{nonce}\n".encode() + body + b"\n",
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            raise _SignatureInvalid("signature does not match") from None

    @staticmethod
    def _error_from(response: requests.Response) -> ChannelError:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("code"):
            return ChannelError(str(payload["code"]), str(payload.get("message", "")), response.status_code)
        reason = response.reason or "error"
        return ChannelError(
            f"HTTP_{response.status_code}", f"WeChat Pay answered {reason}", response.status_code
        )
