import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt import (
    UserControlOpCode,
    UserControlRequest,
    UserControlResponse,
    UserControlResult,
    parse_user_control_request,
    parse_user_control_response,
)
from drivers.gatt.user_data import consent, delete_user_data, register_new_user


def test_register_new_user():
    # §5: 01 register new user, consent code 1234 = 0x04D2 little-endian
    assert register_new_user(1234) == bytes([0x01, 0xD2, 0x04])


def test_consent():
    # §5: 02 consent, user index 3, consent code 9999 = 0x270F
    assert consent(3, 9999) == bytes([0x02, 0x03, 0x0F, 0x27])


def test_delete_user_data():
    assert delete_user_data() == bytes([0x03])


@pytest.mark.parametrize(("index", "code"), [(0, 10000), (0, -1), (256, 0), (-1, 0)])
def test_builders_reject_out_of_range(index, code):
    with pytest.raises(ValueError, match=r"outside|not 0\.\.255"):
        consent(index, code)


def test_register_response():
    # 20 response, 01 to register new user, 01 success, user index 3
    response = parse_user_control_response(bytes([0x20, 0x01, 0x01, 0x03]))
    assert response == UserControlResponse(
        request_op_code=UserControlOpCode.REGISTER_NEW_USER,
        result=UserControlResult.SUCCESS,
        user_index=3,
    )
    assert response.is_success


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # 20 response, 02 to consent, 05 user not authorized (wrong consent code)
        (
            bytes([0x20, 0x02, 0x05]),
            UserControlResponse(
                request_op_code=UserControlOpCode.CONSENT,
                result=UserControlResult.USER_NOT_AUTHORIZED,
            ),
        ),
        # 20 response, 01 to register new user, 04 operation failed (slots full): no index
        (
            bytes([0x20, 0x01, 0x04]),
            UserControlResponse(
                request_op_code=UserControlOpCode.REGISTER_NEW_USER,
                result=UserControlResult.OPERATION_FAILED,
            ),
        ),
        # 20 response, 04 to list all users, 01 success, parameter: 2 users, indexes 1 and 3
        (
            bytes([0x20, 0x04, 0x01, 0x02, 0x01, 0x03]),
            UserControlResponse(
                request_op_code=UserControlOpCode.LIST_ALL_USERS,
                result=UserControlResult.SUCCESS,
                parameter=bytes([0x02, 0x01, 0x03]),
            ),
        ),
    ],
)
def test_other_responses(data, expected):
    assert parse_user_control_response(data) == expected


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "op_code"),
        (bytes([0x01, 0x01, 0x01, 0x03]), "op_code"),  # a request is no response
        (bytes([0x20, 0x01]), "result"),
        (bytes([0x20, 0x01, 0x01]), "user_index"),  # success without the new index
    ],
)
def test_malformed_responses(data, field):
    with pytest.raises(ParseError) as info:
        parse_user_control_response(data)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            register_new_user(1234),
            UserControlRequest(op_code=UserControlOpCode.REGISTER_NEW_USER, consent_code=1234),
        ),
        (
            consent(3, 9999),
            UserControlRequest(op_code=UserControlOpCode.CONSENT, user_index=3, consent_code=9999),
        ),
        (delete_user_data(), UserControlRequest(op_code=UserControlOpCode.DELETE_USER_DATA)),
        (
            bytes([0x05, 0x02]),
            UserControlRequest(op_code=UserControlOpCode.DELETE_USERS, user_index=2),
        ),
    ],
)
def test_requests_as_the_device_sees_them(data, expected):
    assert parse_user_control_request(data) == expected


def test_truncated_consent_request():
    with pytest.raises(ParseError) as info:
        parse_user_control_request(bytes([0x02, 0x03, 0x0F]))
    assert (info.value.field, info.value.offset) == ("consent_code", 2)


@given(st.binary(max_size=8))
def test_random_bytes_give_a_value_or_parse_error(data):
    for parse in (parse_user_control_request, parse_user_control_response):
        with contextlib.suppress(ParseError):
            parse(data)


def test_bleak_bytearray_gives_hashable_bytes():
    # Bleak hands notification values over as bytearray; the record must stay immutable
    response = parse_user_control_response(bytearray([0x20, 0x04, 0x01, 0x02, 0x01, 0x03]))
    assert type(response.parameter) is bytes
    assert hash(response)
