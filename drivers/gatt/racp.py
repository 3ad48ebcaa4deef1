"""Record Access Control Point (0x2A52): requests, responses and their code tables.

The client writes a request (`report_all`, `report_greater_or_equal` …) and the device
answers with an indication: a general response (op 6: request op + response code) or, for
op 4, the number of stored records (op 5). Nordic accepts 1-, 2- or 4-byte counts although
the spec says uint16; so does `parse_racp`.

`parse_racp_request` is the device side, for the simulator. Its `ParseError.field` tells which
response code a device should answer with (`response_code_for`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from drivers.errors import ParseError
from drivers.gatt._codes import CodeTable
from drivers.gatt._reader import Reader


class RacpOpCode(CodeTable):
    """RACP op codes."""

    REPORT_STORED_RECORDS = 1
    DELETE_STORED_RECORDS = 2
    ABORT_OPERATION = 3
    REPORT_NUMBER_OF_STORED_RECORDS = 4
    NUMBER_OF_STORED_RECORDS_RESPONSE = 5
    RESPONSE_CODE = 6


class RacpOperator(CodeTable):
    """RACP operators."""

    NULL = 0
    ALL_RECORDS = 1
    LESS_THAN_OR_EQUAL = 2
    GREATER_THAN_OR_EQUAL = 3
    WITHIN_RANGE = 4
    FIRST_RECORD = 5
    LAST_RECORD = 6


class RacpFilterType(CodeTable):
    """What the operand of a filtered request compares against."""

    SEQUENCE_NUMBER = 1
    USER_FACING_TIME = 2


class RacpResponseCode(CodeTable):
    """Response codes of a general response (op 6)."""

    SUCCESS = 1
    OP_CODE_NOT_SUPPORTED = 2
    INVALID_OPERATOR = 3
    OPERATOR_NOT_SUPPORTED = 4
    INVALID_OPERAND = 5
    NO_RECORDS_FOUND = 6
    ABORT_UNSUCCESSFUL = 7
    PROCEDURE_NOT_COMPLETED = 8
    OPERAND_NOT_SUPPORTED = 9


@dataclass(frozen=True, slots=True, kw_only=True)
class RacpResponse:
    """A RACP indication from the device.

    Exactly one shape is filled, chosen by `op_code`:

    - ``RESPONSE_CODE``: `request_op_code` and `response_code`;
    - ``NUMBER_OF_STORED_RECORDS_RESPONSE``: `number_of_records`.

    Build them with `general` and `records`.
    """

    op_code: RacpOpCode
    request_op_code: RacpOpCode | None = None
    response_code: RacpResponseCode | None = None
    number_of_records: int | None = None

    @classmethod
    def general(
        cls, request_op_code: RacpOpCode, response_code: RacpResponseCode
    ) -> "RacpResponse":
        """A general response (op 6) to `request_op_code`."""
        return cls(
            op_code=RacpOpCode.RESPONSE_CODE,
            request_op_code=request_op_code,
            response_code=response_code,
        )

    @classmethod
    def records(cls, count: int) -> "RacpResponse":
        """A number-of-stored-records response (op 5)."""
        return cls(op_code=RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, number_of_records=count)

    @property
    def is_success(self) -> bool:
        """A general response reporting success."""
        return self.response_code is RacpResponseCode.SUCCESS


_COUNT_SIZES = (1, 2, 4)


def parse_racp(data: bytes) -> RacpResponse:
    """Parse a RACP response indication.

    Args:
        data: ``06 00 <request op> <code>`` or ``05 00 <count LE, 1, 2 or 4 bytes>``.

    Returns:
        The response.

    Raises:
        ParseError: Not a response op code, an operator other than Null, or a wrong length.
    """
    r = Reader(data)
    op_code = RacpOpCode(r.u8("op_code"))
    operator = r.u8("operator")
    if operator != RacpOperator.NULL:
        raise ParseError(
            field="operator",
            offset=1,
            reason=f"responses carry the Null operator, got 0x{operator:02X}",
        )
    if op_code is RacpOpCode.RESPONSE_CODE:
        request_op_code = RacpOpCode(r.u8("request_op_code"))
        response_code = RacpResponseCode(r.u8("response_code"))
        if r.remaining:
            raise ParseError(
                field="response_code", offset=4, reason=f"{r.remaining} unexpected trailing byte(s)"
            )
        return RacpResponse.general(request_op_code, response_code)
    if op_code is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        count = r.rest()
        if len(count) not in _COUNT_SIZES:
            raise ParseError(
                field="number_of_records",
                offset=2,
                reason=f"expected 1, 2 or 4 bytes, got {len(count)}",
            )
        return RacpResponse.records(int.from_bytes(count, "little"))
    raise ParseError(
        field="op_code", offset=0, reason=f"{op_code!r} is not a response op code (5 or 6)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RacpRequest:
    """A RACP request written by the client.

    Attributes:
        op_code: What to do.
        operator: Which records.
        filter_type: For the ≤, ≥ and range operators.
        operand: Sequence-number bounds when `filter_type` is ``SEQUENCE_NUMBER``: one for ≤ and
            ≥, two (min, max) for a range.
        raw_operand: The undecoded operand of any other filter type (user facing time).
    """

    op_code: RacpOpCode
    operator: RacpOperator = RacpOperator.NULL
    filter_type: RacpFilterType | None = None
    operand: tuple[int, ...] = ()
    raw_operand: bytes = b""

    def select(self, sequences: Iterable[int]) -> list[int]:
        """The sequence numbers of stored records this request selects, ascending.

        Only sequence-number filters can be evaluated; other filters select nothing.
        """
        ordered = sorted(sequences)
        op = self.operator
        if op is RacpOperator.ALL_RECORDS:
            return ordered
        if op is RacpOperator.FIRST_RECORD:
            return ordered[:1]
        if op is RacpOperator.LAST_RECORD:
            return ordered[-1:]
        if self.filter_type is not RacpFilterType.SEQUENCE_NUMBER:
            return []
        if op is RacpOperator.GREATER_THAN_OR_EQUAL:
            return [s for s in ordered if s >= self.operand[0]]
        if op is RacpOperator.LESS_THAN_OR_EQUAL:
            return [s for s in ordered if s <= self.operand[0]]
        if op is RacpOperator.WITHIN_RANGE:
            low, high = self.operand
            return [s for s in ordered if low <= s <= high]
        return []


_RECORD_OPS = (
    RacpOpCode.REPORT_STORED_RECORDS,
    RacpOpCode.DELETE_STORED_RECORDS,
    RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
)
_NO_OPERAND = (RacpOperator.ALL_RECORDS, RacpOperator.FIRST_RECORD, RacpOperator.LAST_RECORD)
_ONE_OPERAND = (RacpOperator.LESS_THAN_OR_EQUAL, RacpOperator.GREATER_THAN_OR_EQUAL)


def parse_racp_request(data: bytes) -> RacpRequest:
    """Parse a RACP request as a device receives it.

    Args:
        data: ``<op> <operator> [<filter type> <operand>]``.

    Returns:
        The request.

    Raises:
        ParseError: The request is malformed; `response_code_for` maps the error's field to the
            response code the device should send.
    """
    r = Reader(data)
    op_code = RacpOpCode(r.u8("op_code"))
    operator = RacpOperator(r.u8("operator"))
    if op_code is RacpOpCode.ABORT_OPERATION:
        if operator is not RacpOperator.NULL:
            raise ParseError(field="operator", offset=1, reason="abort takes the Null operator")
        if r.remaining:
            raise ParseError(field="operand", offset=2, reason="abort takes no operand")
        return RacpRequest(op_code=op_code, operator=operator)
    if op_code not in _RECORD_OPS:
        raise ParseError(field="op_code", offset=0, reason=f"{op_code!r} is not a request op code")
    if operator in _NO_OPERAND:
        if r.remaining:
            raise ParseError(field="operand", offset=2, reason=f"{operator.name} takes no operand")
        return RacpRequest(op_code=op_code, operator=operator)
    if operator not in (*_ONE_OPERAND, RacpOperator.WITHIN_RANGE):
        raise ParseError(
            field="operator", offset=1, reason=f"{operator!r} is not a record operator"
        )
    filter_type = RacpFilterType(r.u8("filter_type"))
    if filter_type is not RacpFilterType.SEQUENCE_NUMBER:
        raw = r.rest()
        if not raw:
            raise ParseError(field="operand", offset=3, reason="filter has no operand")
        return RacpRequest(
            op_code=op_code, operator=operator, filter_type=filter_type, raw_operand=raw
        )
    count = 1 if operator in _ONE_OPERAND else 2
    operand = tuple(r.u16("operand") for _ in range(count))
    if r.remaining:
        raise ParseError(
            field="operand", offset=r.offset, reason=f"{r.remaining} unexpected trailing byte(s)"
        )
    if count == 2 and operand[0] > operand[1]:
        raise ParseError(field="operand", offset=3, reason="range minimum is above its maximum")
    return RacpRequest(op_code=op_code, operator=operator, filter_type=filter_type, operand=operand)


def response_code_for(error: ParseError) -> RacpResponseCode:
    """The response code a device answers a request `parse_racp_request` rejected with."""
    return {
        "op_code": RacpResponseCode.OP_CODE_NOT_SUPPORTED,
        "operator": RacpResponseCode.INVALID_OPERATOR,
        "filter_type": RacpResponseCode.INVALID_OPERAND,
    }.get(error.field, RacpResponseCode.INVALID_OPERAND)


def encode_racp_request(request: RacpRequest) -> bytes:
    """The bytes a client writes for `request` (inverse of `parse_racp_request`).

    Raises:
        ValueError: A sequence-number operand does not fit uint16.
    """
    out = bytearray((request.op_code, request.operator))
    if request.filter_type is not None:
        out.append(request.filter_type)
    for value in request.operand:
        if not 0 <= value <= 0xFFFF:
            msg = f"RACP sequence operand {value} is outside 0..65535"
            raise ValueError(msg)
        out += value.to_bytes(2, "little")
    out += request.raw_operand
    return bytes(out)


def _seq_request(op_code: RacpOpCode, operator: RacpOperator, *operand: int) -> bytes:
    return encode_racp_request(
        RacpRequest(
            op_code=op_code,
            operator=operator,
            filter_type=RacpFilterType.SEQUENCE_NUMBER,
            operand=operand,
        )
    )


def report_all() -> bytes:
    """``01 01``: report every stored record."""
    return bytes((RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS))


def report_greater_or_equal(sequence: int) -> bytes:
    """``01 03 01 <seq LE16>``: report records with sequence ≥ `sequence`."""
    return _seq_request(
        RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_THAN_OR_EQUAL, sequence
    )


def report_first() -> bytes:
    """``01 05``: report the oldest record."""
    return bytes((RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.FIRST_RECORD))


def report_last() -> bytes:
    """``01 06``: report the newest record."""
    return bytes((RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST_RECORD))


def count_all() -> bytes:
    """``04 01``: ask for the number of stored records."""
    return bytes((RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.ALL_RECORDS))


def count_greater_or_equal(sequence: int) -> bytes:
    """``04 03 01 <seq LE16>``: ask how many records have sequence ≥ `sequence`."""
    return _seq_request(
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        RacpOperator.GREATER_THAN_OR_EQUAL,
        sequence,
    )


def delete_all() -> bytes:
    """``02 01``: delete every stored record."""
    return bytes((RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.ALL_RECORDS))


def abort() -> bytes:
    """``03 00``: abort the operation in progress."""
    return bytes((RacpOpCode.ABORT_OPERATION, RacpOperator.NULL))
