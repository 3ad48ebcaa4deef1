"""User Data Service: the User Control Point (0x2A9F).

A scale keeps a few user slots, each guarded by a consent code (0..9999) shown on or chosen at
the scale. The client registers a new user (``01 <code LE16>``, answered ``20 01 01 <index>``)
or gives consent for an existing slot (``02 <index> <code LE16>``) before the scale reports
that user's measurements.
"""

from dataclasses import dataclass

from drivers.errors import ParseError
from drivers.gatt._codes import CodeTable
from drivers.gatt._reader import Reader

MAX_CONSENT_CODE = 9999


class UserControlOpCode(CodeTable):
    """User Control Point op codes."""

    REGISTER_NEW_USER = 0x01
    CONSENT = 0x02
    DELETE_USER_DATA = 0x03
    LIST_ALL_USERS = 0x04
    DELETE_USERS = 0x05
    RESPONSE_CODE = 0x20


class UserControlResult(CodeTable):
    """Response values of the User Control Point."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_PARAMETER = 0x03
    OPERATION_FAILED = 0x04
    USER_NOT_AUTHORIZED = 0x05


def _consent_code(code: int) -> bytes:
    if not 0 <= code <= MAX_CONSENT_CODE:
        msg = f"consent code {code} is outside 0..{MAX_CONSENT_CODE}; use the code the scale shows"
        raise ValueError(msg)
    return code.to_bytes(2, "little")


def register_new_user(consent_code: int) -> bytes:
    """``01 <code LE16>``: ask for a new user slot guarded by `consent_code`.

    Raises:
        ValueError: `consent_code` is outside 0..9999.
    """
    return bytes((UserControlOpCode.REGISTER_NEW_USER,)) + _consent_code(consent_code)


def consent(user_index: int, consent_code: int) -> bytes:
    """``02 <index> <code LE16>``: unlock slot `user_index` with its consent code.

    Raises:
        ValueError: `user_index` is not a byte or `consent_code` is outside 0..9999.
    """
    if not 0 <= user_index <= 0xFF:
        msg = f"user index {user_index} is not 0..255"
        raise ValueError(msg)
    return bytes((UserControlOpCode.CONSENT, user_index)) + _consent_code(consent_code)


def delete_user_data() -> bytes:
    """``03``: delete the data of the user consented to in this connection."""
    return bytes((UserControlOpCode.DELETE_USER_DATA,))


@dataclass(frozen=True, slots=True, kw_only=True)
class UserControlRequest:
    """A User Control Point request, as the device (simulator) receives it.

    Attributes:
        op_code: What is asked.
        user_index: For ``CONSENT`` (and ``DELETE_USERS``).
        consent_code: For ``REGISTER_NEW_USER`` and ``CONSENT``, raw (may exceed 9999).
        parameter: Any other parameter bytes, undecoded.
    """

    op_code: UserControlOpCode
    user_index: int | None = None
    consent_code: int | None = None
    parameter: bytes = b""


def parse_user_control_request(data: bytes) -> UserControlRequest:
    """Parse a User Control Point request.

    Args:
        data: The value the client wrote.

    Returns:
        The request.

    Raises:
        ParseError: Too short for its op code.
    """
    r = Reader(data)
    op_code = UserControlOpCode(r.u8("op_code"))
    if op_code is UserControlOpCode.REGISTER_NEW_USER:
        return UserControlRequest(op_code=op_code, consent_code=r.u16("consent_code"))
    if op_code is UserControlOpCode.CONSENT:
        index = r.u8("user_index")
        return UserControlRequest(
            op_code=op_code, user_index=index, consent_code=r.u16("consent_code")
        )
    if op_code is UserControlOpCode.DELETE_USERS:
        return UserControlRequest(op_code=op_code, user_index=r.u8("user_index"))
    return UserControlRequest(op_code=op_code, parameter=r.rest())


@dataclass(frozen=True, slots=True, kw_only=True)
class UserControlResponse:
    """A User Control Point response indication (``20 <request op> <result> [parameter]``).

    Attributes:
        request_op_code: The request this answers.
        result: Success or why not.
        user_index: The new slot, for a successful ``REGISTER_NEW_USER``.
        parameter: Any other response parameter bytes (e.g. a user list), undecoded.
    """

    request_op_code: UserControlOpCode
    result: UserControlResult
    user_index: int | None = None
    parameter: bytes = b""

    @property
    def is_success(self) -> bool:
        """The request succeeded."""
        return self.result is UserControlResult.SUCCESS


def parse_user_control_response(data: bytes) -> UserControlResponse:
    """Parse a User Control Point response indication.

    Args:
        data: The indicated value.

    Returns:
        The response; a successful registration carries the new user index.

    Raises:
        ParseError: Not a response (op 0x20), or too short.
    """
    r = Reader(data)
    op_code = r.u8("op_code")
    if op_code != UserControlOpCode.RESPONSE_CODE:
        raise ParseError(
            field="op_code", offset=0, reason=f"0x{op_code:02X} is not a response (0x20)"
        )
    request = UserControlOpCode(r.u8("request_op_code"))
    result = UserControlResult(r.u8("result"))
    index = None
    if request is UserControlOpCode.REGISTER_NEW_USER and result is UserControlResult.SUCCESS:
        index = r.u8("user_index")
    return UserControlResponse(
        request_op_code=request, result=result, user_index=index, parameter=r.rest()
    )
