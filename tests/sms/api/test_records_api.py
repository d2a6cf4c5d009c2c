"""``GET /api/v1/sms/records/{id}``, ``GET /api/v1/sms/records?…`` and ``GET /api/v1/sms/batches/{id}``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sms_service.accepting import sending
from sms_service.delivery import dispatch
from sms_service.models import Message
from tests.factories import create_sms_tenant
from tests.sms.conftest import auth, create_template

VARIABLES = {"code": "123456", "minutes": "5"}


def test_record_shows_masked_mobile_channel_response_and_times(
    sms_client, sms_db, sms_tenant, template, aliyun
):
    tenant, key = sms_tenant
    [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)["message_ids"]
    queued = sms_client.get(f"/api/v1/sms/records/{message_id}", headers=auth(key)).get_json()["data"]
    assert queued["status"] == "queued" and queued["sent_at"] is None and queued["callback"] is None
    dispatch.deliver(sms_db, [message_id])
    response = sms_client.get(f"/api/v1/sms/records/{message_id}", headers=auth(key))
    data = response.get_json()["data"]
    [accepted] = aliyun.accepted()
    assert response.status_code == 200
    assert data["message_id"] == message_id and data["template_id"] == template.id
    assert data["mobile"] == "138****8000" and "13800138000" not in response.get_data(as_text=True)
    assert data["status"] == "submitted" and data["provider"] == "aliyun"
    assert data["channel_response"] == {"req_id": accepted.request_id, "biz_id": accepted.biz_id}
    assert data["sent_at"].endswith("Z") and data["created_at"].endswith("Z")
    assert data["error_code"] is None and data["error_message"] is None


def test_record_of_another_tenant_or_unknown_is_404(sms_client, sms_db, sms_tenant, template):
    tenant, key = sms_tenant
    [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)["message_ids"]
    _other, other_key = create_sms_tenant(sms_db, name="别的租户")
    assert sms_client.get(f"/api/v1/sms/records/{message_id}", headers=auth(other_key)).status_code == 404
    assert sms_client.get("/api/v1/sms/records/MSG_nope", headers=auth(key)).status_code == 404
    assert sms_client.get(f"/api/v1/sms/records/{message_id}").status_code == 401


def test_search_by_mobile_status_template_and_time(sms_client, sms_db, sms_tenant, template):
    tenant, key = sms_tenant
    other_template = create_template(sms_db, tenant.id, name="另一个")
    first = sending.send(sms_db, tenant.id, template.id, ["13800138000", "13900139000"], VARIABLES)
    sending.send(sms_db, tenant.id, other_template.id, ["15000150000"], VARIABLES)
    _other, other_key = create_sms_tenant(sms_db, name="别的租户")

    def search(query, api_key=key):
        response = sms_client.get("/api/v1/sms/records" + query, headers=auth(api_key))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]

    everything = search("")
    assert everything["total"] == 3 and everything["page"] == 1 and everything["size"] == 20
    by_mobile = search("?mobile=%2B8613800138000")
    assert [r["message_id"] for r in by_mobile["list"]] == [first["message_id"]]
    assert by_mobile["list"][0]["mobile"] == "138****8000"
    assert search(f"?template_id={other_template.id}")["total"] == 1
    assert search("?status=queued")["total"] == 3 and search("?status=success")["total"] == 0
    assert search("?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z")["total"] == 3
    assert search("?from=2999-01-01T00:00:00Z")["total"] == 0
    assert search("?page=2&size=2")["list"][0]["message_id"] == first["message_ids"][0]
    assert search("", api_key=other_key)["total"] == 0


def test_search_rejects_bad_filters(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    for query in ("?mobile=123", "?status=lost", "?from=yesterday", "?page=0", "?size=101"):
        response = sms_client.get("/api/v1/sms/records" + query, headers=auth(key))
        assert response.status_code == 400 and response.get_json()["data"]["errors"], query


def test_batch_shows_counts_by_status_and_masked_messages(sms_client, sms_db, sms_tenant, template, aliyun):
    tenant, key = sms_tenant
    aliyun.error_for_number("13900139000", "isv.MOBILE_NUMBER_ILLEGAL")
    items = [{"mobile": m, "variables": VARIABLES} for m in ("13800138000", "13900139000", "15000150000")]
    accepted = sending.batch_send(sms_db, tenant.id, template.id, items)
    batch_id = accepted["batch_id"]
    ids = sms_db.scalars(select(Message.id).where(Message.batch_id == batch_id)).all()
    dispatch.deliver(sms_db, ids)

    response = sms_client.get(f"/api/v1/sms/batches/{batch_id}?size=2", headers=auth(key))
    data = response.get_json()["data"]
    assert response.status_code == 200
    assert data["batch_id"] == batch_id and data["total"] == 3
    assert data["counts"] == {"queued": 0, "sending": 0, "submitted": 2, "success": 0, "failed": 1}
    assert [m["mobile"] for m in data["list"]] == ["138****8000", "139****9000"]
    assert data["list"][1]["status"] == "failed" and data["page"] == 1 and data["size"] == 2
    page_two = sms_client.get(f"/api/v1/sms/batches/{batch_id}?page=2&size=2", headers=auth(key))
    assert [m["mobile"] for m in page_two.get_json()["data"]["list"]] == ["150****0000"]


def test_a_batch_read_in_one_round_trip_is_the_batch_read_in_two(sms_db, sms_tenant, template):
    from sms_service import records

    tenant, _key = sms_tenant
    items = [{"mobile": f"1380013{n:04d}", "variables": VARIABLES} for n in range(7)]
    batch_id = sending.batch_send(sms_db, tenant.id, template.id, items)["batch_id"]
    for page, size in ((1, 3), (2, 3), (3, 3), (4, 3), (1, 100)):
        at_once = records._batch_progress_at_once(sms_db, tenant.id, batch_id, page, size)
        assert at_once == records._batch_progress_in_two(sms_db, tenant.id, batch_id, page, size)
    assert [m.mobile for m in at_once["list"]] == [item["mobile"] for item in items]
    assert records._batch_progress_at_once(sms_db, tenant.id, batch_id, 4, 3)["list"] == []


def test_batch_of_another_tenant_is_404(sms_client, sms_db, sms_tenant, template):
    tenant, _key = sms_tenant
    batch_id = sending.batch_send(
        sms_db, tenant.id, template.id, [{"mobile": "13800138000", "variables": VARIABLES}]
    )["batch_id"]
    _other, other_key = create_sms_tenant(sms_db, name="别的租户")
    response = sms_client.get(f"/api/v1/sms/batches/{batch_id}", headers=auth(other_key))
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_a_batch_answers_ids_and_utc_times_as_documented(sms_client, sms_db, sms_tenant, template):
    tenant, key = sms_tenant
    items = [{"mobile": "13800138000", "variables": VARIABLES}]
    batch_id = sending.batch_send(sms_db, tenant.id, template.id, items)["batch_id"]
    data = sms_client.get(f"/api/v1/sms/batches/{batch_id}", headers=auth(key)).get_json()["data"]
    assert set(data) == {
        "batch_id",
        "template_id",
        "total",
        "created_at",
        "test",
        "counts",
        "list",
        "page",
        "size",
    }
    assert data["created_at"].endswith("Z") and data["template_id"] == template.id and data["test"] is False
    assert data["list"] == [
        {"message_id": data["list"][0]["message_id"], "mobile": "138****8000", "status": "queued"}
    ]
    assert data["list"][0]["message_id"].startswith("MSG_")
    assert (data["page"], data["size"]) == (1, 20)


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("?page=0", {"page": ["page 必须在 1 到 1000000 之间"]}),
        ("?page=1000001", {"page": ["page 必须在 1 到 1000000 之间"]}),
        ("?size=101", {"size": ["size 必须在 1 到 100 之间"]}),
        ("?size=0&page=x", {"size": ["size 必须在 1 到 100 之间"], "page": ["Not a valid integer."]}),
    ],
)
def test_a_batch_page_out_of_range_is_400_naming_it(sms_client, sms_tenant, query, errors):
    _tenant, key = sms_tenant
    response = sms_client.get(f"/api/v1/sms/batches/BATCH_x{query}", headers=auth(key))
    body = response.get_json()
    assert response.status_code == 400 and body["data"]["errors"] == errors
