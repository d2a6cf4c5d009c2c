"""The WeChat Pay v3 API client for one merchant: JSAPI orders, query, close, refunds, profit sharing and its
return orders, partner (service provider for a sub-merchant) or direct merchant; every call signed, every 2xx
answer verified (`transport`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from payment_service.channels.base import (
    BEIJING,
    ChannelError,
    CreatedOrder,
    NotifyReply,
    OrderRequest,
    PaidNotice,
    PaymentChannel,
    QueriedOrder,
)
from payment_service.channels.refunds import RefundNotice, RefundRequest, RefundResult
from payment_service.channels.wechat import notifications
from payment_service.channels.wechat.profit_sharing import (
    ProfitSharingOrder,
    ProfitSharingReturnOrder,
    SharingReceiver,
    SharingReturn,
    SharingTransfer,
)
from payment_service.channels.wechat.refunds import REFUND_PATH, refund_body, refund_result
from payment_service.channels.wechat.signing import sign_pay_params
from payment_service.channels.wechat.transactions import TRADE_STATES, amount_total, parse_rfc3339
from payment_service.channels.wechat.transport import API_BASE_URL, USER_AGENT, WechatTransport

__all__ = ["API_BASE_URL", "USER_AGENT", "WechatPayClient"]

# A refund query for an out_refund_no WeChat never received answers 404 with one of these codes.
_NOT_FOUND_CODES = frozenset({"RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST"})


def _rfc3339_beijing(moment: datetime) -> str:
    """WeChat reads time_expire in RFC 3339; naive datetimes are UTC, as everywhere in this service."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


class WechatPayClient(WechatTransport, PaymentChannel):
    """WeChat Pay v3 for one merchant configuration.

    In wechat_split mode the service provider signs and the sub-merchant (sub_mchid) receives the money;
    in wechat_direct mode the merchant does both.
    """

    name = "wechat"

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

    # -- refunds ----------------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundResult:
        """Ask WeChat to refund. It usually answers PROCESSING; the result comes as a notification or a query.

        A second refund of the same order too soon after the first answers FREQUENCY_LIMITED, retryable.
        """
        body = refund_body(request, self._sub_merchant())
        return refund_result(self._request("POST", REFUND_PATH, body=body), request.refund_id)

    def query_refund(self, transaction_id: str, refund_id: str) -> RefundResult | None:
        """WeChat finds a refund by out_refund_no alone (and the sub-merchant in partner mode)."""
        path = f"{REFUND_PATH}/{quote(refund_id, safe='')}"
        try:
            data = self._request("GET", path, query=self._sub_merchant() or None)
        except ChannelError as exc:
            if exc.http_status == 404 and exc.code in _NOT_FOUND_CODES:
                return None
            raise
        return refund_result(data, refund_id)

    def parse_refund_notification(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime | None = None
    ) -> RefundNotice:
        """Verify, decrypt and read a refund notification, exactly as payment notifications are read.

        Raises NotificationRejected for the same reasons, and for a notification that is not a refund event.
        """
        return notifications.read_refund_notice(
            headers,
            raw_body,
            credentials=self.credentials,
            wechatpay_key=self._wechatpay_key,
            partner=self.partner,
            now=now,
        )

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
        query = {**self._sub_merchant(), "transaction_id": transaction_id}
        path = f"/v3/profitsharing/orders/{quote(out_order_no, safe='')}"
        return ProfitSharingOrder.from_response(self._request("GET", path, query=query))

    def create_profit_sharing_return(self, sharing_return: SharingReturn) -> ProfitSharingReturnOrder:
        """Take a receiver's share back to the sub-merchant before refunding; idempotent by out_return_no."""
        body = self._sub_merchant()
        body.update(
            out_order_no=sharing_return.out_order_no,
            out_return_no=sharing_return.out_return_no,
            return_mchid=sharing_return.return_mchid,
            amount=sharing_return.amount_fen,
            description=sharing_return.description,
        )
        return _return_order(self._request("POST", "/v3/profitsharing/return-orders", body=body))

    def query_profit_sharing_return(self, out_order_no: str, out_return_no: str) -> ProfitSharingReturnOrder:
        query = {"out_order_no": out_order_no, **self._sub_merchant()}
        path = f"/v3/profitsharing/return-orders/{quote(out_return_no, safe='')}"
        return _return_order(self._request("GET", path, query=query))

    def encrypt_field(self, plaintext: str) -> str:
        """Sensitive fields (receiver names) go RSA-OAEP(SHA-1)-encrypted under the WeChat Pay public key."""
        ciphertext = self._wechatpay_key.encrypt(
            plaintext.encode("utf-8"),
            padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
        )
        return base64.b64encode(ciphertext).decode("ascii")

    def _sharing_scope(self) -> dict[str, Any]:
        c = self.credentials
        body = {**self._sub_merchant(), "appid": c.app_id}
        if self.partner and c.sub_app_id:
            body["sub_appid"] = c.sub_app_id
        return body


def _return_order(data: Mapping[str, Any]) -> ProfitSharingReturnOrder:
    try:
        return ProfitSharingReturnOrder.from_response(data)
    except ValueError as exc:
        raise ChannelError("BAD_RESPONSE", str(exc), 200) from None
