"""The WeChat Pay v3 API client for one merchant: JSAPI orders, query, close and profit sharing, partner
(service provider for a sub-merchant) or direct merchant; every call signed, every 2xx answer verified.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from payment_service.channels.base import (
    BEIJING,
    ChannelError,
    CreatedOrder,
    HttpChannel,
    NotifyReply,
    OrderRequest,
    PaidNotice,
    PaymentChannel,
    QueriedOrder,
)
from payment_service.channels.keys import load_private_key, load_public_key
from payment_service.channels.wechat import notifications
from payment_service.channels.wechat.credentials import WechatCredentials, WechatMode
from payment_service.channels.wechat.profit_sharing import (
    ProfitSharingOrder,
    SharingReceiver,
    SharingTransfer,
)
from payment_service.channels.wechat.signing import (
    SignatureInvalid,
    authorization,
    sign_pay_params,
    verify_signed_message,
)
from payment_service.channels.wechat.transactions import TRADE_STATES, amount_total, parse_rfc3339

__all__ = ["API_BASE_URL", "USER_AGENT", "WechatPayClient"]

API_BASE_URL = "https://api.mch.weixin.qq.com"
USER_AGENT = "laundry-payment-service/1.0 (WeChatPay-APIv3; python-requests)"


def _rfc3339_beijing(moment: datetime) -> str:
    """WeChat reads time_expire in RFC 3339; naive datetimes are UTC, as everywhere in this service."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


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
        return sign_pay_params(self._private_key, self.paying_app_id, prepay_id)

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
        if trade_state not in TRADE_STATES:
            raise ChannelError("BAD_RESPONSE", f"unknown trade_state {trade_state!r}", 200)
        return QueriedOrder(
            state=TRADE_STATES[trade_state],
            channel_transaction_id=data.get("transaction_id"),
            amount_fen=amount_total(data),
            paid_at=parse_rfc3339(data.get("success_time")),
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
        return notifications.read_paid_notice(
            headers,
            raw_body,
            credentials=self.credentials,
            wechatpay_key=self._wechatpay_key,
            partner=self.partner,
            now=now,
        )

    def decrypt_resource(self, resource: Mapping[str, Any]) -> str:
        """AEAD_AES_256_GCM with the APIv3 key; the nonce is the UTF-8 of the 12-character nonce string."""
        return notifications.decrypt_resource(resource, self.credentials.api_key)

    def read_notification(self, headers: Mapping[str, str], body: bytes) -> PaidNotice:
        return self.parse_notification(headers, body)

    def notification_reply(self, accepted: bool) -> NotifyReply:
        """WeChat wants 204 with no body for success; any 4xx/5xx with code FAIL makes it redeliver."""
        return notifications.notification_reply(accepted)

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
        prepared.headers["Authorization"] = authorization(
            self._private_key,
            self.credentials.mch_id,
            self.credentials.merchant_serial_no,
            method,
            prepared.path_url,
            data or b"",
        )

        response = self._send(prepared, f"wechat {method} {path}")
        if not 200 <= response.status_code < 300:
            raise self._error_from(response)
        try:
            verify_signed_message(
                self._wechatpay_key,
                self.credentials.wechatpay_public_key_id,
                response.headers,
                response.content,
                None,
            )
        except SignatureInvalid as exc:
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
