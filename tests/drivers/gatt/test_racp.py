import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt import racp
from drivers.gatt.racp import (
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    encode_racp_request,
    parse_racp,
    parse_racp_request,
    response_code_for,
)

Op = RacpOpCode
Code = RacpResponseCode


def test_success():
    # §5 #11: 06 response code, 00 Null operator, 01 request op (report stored records), 01 success
    assert parse_racp(bytes([0x06, 0x00, 0x01, 0x01])) == RacpResponse(
        op_code=RacpOpCode.RESPONSE_CODE,
        request_op_code=RacpOpCode.REPORT_STORED_RECORDS,
        response_code=RacpResponseCode.SUCCESS,
    )
    assert parse_racp(bytes([0x06, 0x00, 0x01, 0x01])).is_success


def test_no_records_found():
    # §5 #12: 06 00, request op 01, code 06 no records found
    response = parse_racp(bytes([0x06, 0x00, 0x01, 0x06]))
    assert response == RacpResponse.general(
        RacpOpCode.REPORT_STORED_RECORDS, RacpResponseCode.NO_RECORDS_FOUND
    )
    assert not response.is_success


@pytest.mark.parametrize(
    ("data", "request_op", "code"),
    [
        # §5 #13: 06 00 <request op> <response code>
        (bytes([0x06, 0x00, 0x0C, 0x02]), Op(12), Code.OP_CODE_NOT_SUPPORTED),
        (bytes([0x06, 0x00, 0x01, 0x03]), Op.REPORT_STORED_RECORDS, Code.INVALID_OPERATOR),
        (bytes([0x06, 0x00, 0x02, 0x04]), Op.DELETE_STORED_RECORDS, Code.OPERATOR_NOT_SUPPORTED),
        (bytes([0x06, 0x00, 0x01, 0x05]), Op.REPORT_STORED_RECORDS, Code.INVALID_OPERAND),
        (bytes([0x06, 0x00, 0x03, 0x07]), Op.ABORT_OPERATION, Code.ABORT_UNSUCCESSFUL),
        (bytes([0x06, 0x00, 0x02, 0x08]), Op.DELETE_STORED_RECORDS, Code.PROCEDURE_NOT_COMPLETED),
        (bytes([0x06, 0x00, 0x02, 0x09]), Op.DELETE_STORED_RECORDS, Code.OPERAND_NOT_SUPPORTED),
    ],
)  # fmt: skip
def test_every_response_code(data, request_op, code):
    assert parse_racp(data) == RacpResponse.general(request_op, code)


def test_unknown_request_op_and_response_code_are_kept():
    response = parse_racp(bytes([0x06, 0x00, 0x0C, 0x0A]))
    assert response.request_op_code.name == "RESERVED_12"
    assert response.response_code == 10


def test_number_of_records_uint16():
    # §5 #14: 05 number of records, 00 Null operator, 0x0102 = 258
    assert parse_racp(bytes([0x05, 0x00, 0x02, 0x01])) == RacpResponse(
        op_code=RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, number_of_records=258
    )


@pytest.mark.parametrize(
    ("data", "count"),
    [
        (bytes([0x05, 0x00, 0x01]), 1),  # §5 #15: 1-byte count (Nordic is lenient)
        (bytes([0x05, 0x00, 0x04, 0x03, 0x02, 0x01]), 16909060),  # 4-byte count 0x01020304
        (bytes([0x05, 0x00, 0xFF, 0xFF]), 65535),
    ],
)
def test_number_of_records_widths(data, count):
    assert parse_racp(data) == RacpResponse.records(count)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (bytes([0x05, 0x00, 0x03, 0x02, 0x01]), "number_of_records"),  # §5 #15: 3 bytes invalid
        (bytes([0x05, 0x00]), "number_of_records"),
        (bytes([0x06, 0x00, 0x01]), "response_code"),
        (bytes([0x06, 0x00, 0x01, 0x01, 0x00]), "response_code"),  # trailing byte
        (bytes([0x06, 0x01, 0x01, 0x01]), "operator"),  # responses use the Null operator
        (bytes([0x01, 0x00, 0x01, 0x01]), "op_code"),  # a request op code is no response
        (bytes([0x06]), "operator"),
        (b"", "op_code"),
    ],
)
def test_malformed_responses(data, field):
    with pytest.raises(ParseError) as info:
        parse_racp(data)
    assert info.value.field == field


@given(st.binary(max_size=8))
def test_random_bytes_give_a_response_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_racp(data)


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        # §5 request vectors (Tidepool ble-glucose, xDrip RecordsCmdTx)
        (racp.report_all(), bytes([0x01, 0x01])),
        (racp.report_greater_or_equal(43), bytes([0x01, 0x03, 0x01, 0x2B, 0x00])),
        (racp.report_greater_or_equal(40000), bytes([0x01, 0x03, 0x01, 0x40, 0x9C])),
        (racp.report_first(), bytes([0x01, 0x05])),
        (racp.report_last(), bytes([0x01, 0x06])),
        (racp.count_all(), bytes([0x04, 0x01])),
        (racp.count_greater_or_equal(43), bytes([0x04, 0x03, 0x01, 0x2B, 0x00])),
        (racp.delete_all(), bytes([0x02, 0x01])),
        (racp.abort(), bytes([0x03, 0x00])),
    ],
)
def test_request_builders(built, expected):
    assert built == expected


def test_builder_rejects_sequence_out_of_range():
    with pytest.raises(ValueError, match="65535"):
        racp.report_greater_or_equal(65536)


def test_parse_request_greater_or_equal():
    assert parse_racp_request(bytes([0x01, 0x03, 0x01, 0xFF, 0xFF])) == RacpRequest(
        op_code=RacpOpCode.REPORT_STORED_RECORDS,
        operator=RacpOperator.GREATER_THAN_OR_EQUAL,
        filter_type=RacpFilterType.SEQUENCE_NUMBER,
        operand=(65535,),
    )


def test_parse_request_range_and_user_facing_time():
    assert parse_racp_request(bytes([0x04, 0x04, 0x01, 0x02, 0x00, 0x05, 0x00])) == RacpRequest(
        op_code=RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        operator=RacpOperator.WITHIN_RANGE,
        filter_type=RacpFilterType.SEQUENCE_NUMBER,
        operand=(2, 5),
    )
    ufs = bytes([0x01, 0x02, 0x02, 0xE8, 0x07, 0x03, 0x0F, 0x0E, 0x1E, 0x2D])
    assert parse_racp_request(ufs).raw_operand == ufs[3:]


@pytest.mark.parametrize(
    "built",
    [
        racp.report_all(),
        racp.report_greater_or_equal(7),
        racp.report_first(),
        racp.report_last(),
        racp.count_all(),
        racp.count_greater_or_equal(7),
        racp.delete_all(),
        racp.abort(),
    ],
)
def test_every_builder_parses_back(built):
    assert encode_racp_request(parse_racp_request(built)) == built


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (bytes([0x09, 0x01]), RacpResponseCode.OP_CODE_NOT_SUPPORTED),
        (bytes([0x01, 0x07]), RacpResponseCode.INVALID_OPERATOR),
        (bytes([0x03, 0x01]), RacpResponseCode.INVALID_OPERATOR),
        (bytes([0x03, 0x00, 0x01]), RacpResponseCode.INVALID_OPERAND),
        (bytes([0x01, 0x01, 0x00]), RacpResponseCode.INVALID_OPERAND),
        (bytes([0x01, 0x03, 0x01, 0x01]), RacpResponseCode.INVALID_OPERAND),
        (bytes([0x01, 0x03]), RacpResponseCode.INVALID_OPERAND),
        (bytes([0x01, 0x04, 0x01, 0x05, 0x00, 0x02, 0x00]), RacpResponseCode.INVALID_OPERAND),
        (bytes([0x01, 0x03, 0x02]), RacpResponseCode.INVALID_OPERAND),
    ],
)
def test_malformed_requests_map_to_response_codes(data, code):
    with pytest.raises(ParseError) as info:
        parse_racp_request(data)
    assert response_code_for(info.value) is code


@given(st.binary(max_size=10))
def test_random_bytes_give_a_request_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_racp_request(data)


@given(st.binary(max_size=10))
def test_every_request_that_parses_encodes_back_to_the_same_bytes(data):
    try:
        request = parse_racp_request(data)
    except ParseError:
        return
    assert encode_racp_request(request) == data


@given(
    st.sampled_from([RacpOpCode.REPORT_STORED_RECORDS, RacpOpCode.DELETE_STORED_RECORDS]),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
)
def test_range_requests_round_trip(op_code, a, b):
    request = RacpRequest(
        op_code=op_code,
        operator=RacpOperator.WITHIN_RANGE,
        filter_type=RacpFilterType.SEQUENCE_NUMBER,
        operand=(min(a, b), max(a, b)),
    )
    assert parse_racp_request(encode_racp_request(request)) == request


def _request(operator, *operand):
    return RacpRequest(
        op_code=RacpOpCode.REPORT_STORED_RECORDS,
        operator=operator,
        filter_type=RacpFilterType.SEQUENCE_NUMBER if operand else None,
        operand=operand,
    )


@pytest.mark.parametrize(
    ("request_", "selected"),
    [
        (_request(RacpOperator.ALL_RECORDS), [1, 2, 40000]),
        (_request(RacpOperator.FIRST_RECORD), [1]),
        (_request(RacpOperator.LAST_RECORD), [40000]),
        (_request(RacpOperator.GREATER_THAN_OR_EQUAL, 2), [2, 40000]),
        (_request(RacpOperator.LESS_THAN_OR_EQUAL, 2), [1, 2]),
        (_request(RacpOperator.WITHIN_RANGE, 2, 3), [2]),
    ],
)
def test_select(request_, selected):
    assert request_.select([40000, 2, 1]) == selected


def test_select_nothing_without_records():
    assert _request(RacpOperator.LAST_RECORD).select([]) == []
