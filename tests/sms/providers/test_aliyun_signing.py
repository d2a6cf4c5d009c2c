"""Aliyun RPC signing and percent-encoding against the published vectors."""

import pytest

from sms_service.providers.signing import aliyun_rpc_signature, aliyun_string_to_sign, percent_encode

# Vector A: Alibaba Cloud "Request signature" document (RPC style), DescribeRegions.
VECTOR_A = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}
# Vector B: the SMS SendSms example published with dysmsapi's signature notes.
VECTOR_B = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_vector_a_string_to_sign_and_signature():
    assert aliyun_string_to_sign("GET", VECTOR_A) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    )
    assert aliyun_rpc_signature("GET", VECTOR_A, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    assert aliyun_rpc_signature("POST", VECTOR_A, "testsecret") == "MxbnVAM4w6sft9xjVpe/GCKueuk="


def test_vector_b_send_sms_signature():
    assert aliyun_rpc_signature("GET", VECTOR_B, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun_rpc_signature("POST", VECTOR_B, "testSecret") == "Xvhv7fPXrPkLVSnlt0jIr08o8NQ="


def test_signature_ignores_an_existing_signature_parameter():
    signed = {**VECTOR_B, "Signature": "whatever"}
    assert aliyun_rpc_signature("GET", signed, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("a*b", "a%2Ab"),
        ("a~b", "a~b"),
        ("a+b", "a%2Bb"),
        ("-_.", "-_."),
        ("短", "%E7%9F%AD"),
    ],
)
def test_percent_encoding_is_rfc3986(raw, encoded):
    assert percent_encode(raw) == encoded
