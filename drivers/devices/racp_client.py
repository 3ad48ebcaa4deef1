"""The client side of a Record Access Control Point procedure (Glucose Profile).

One procedure at a time: write a request, collect what the device sends, until its RACP
indication ends the procedure. Every wait races the link going down (`drivers.link.wait_for`).
A long report is not cut by a fixed deadline: the timeout restarts with every record.
"""

import asyncio
import logging

from drivers.errors import LinkTimeoutError, ParseError, ProtocolError
from drivers.gatt import uuids
from drivers.gatt.racp import RacpOpCode, RacpResponse, RacpResponseCode, parse_racp
from drivers.link import GattLink, wait_for

_LOGGER = logging.getLogger(__name__)

_UNSUPPORTED = {
    RacpResponseCode.OP_CODE_NOT_SUPPORTED,
    RacpResponseCode.INVALID_OPERATOR,
    RacpResponseCode.OPERATOR_NOT_SUPPORTED,
    RacpResponseCode.INVALID_OPERAND,
    RacpResponseCode.OPERAND_NOT_SUPPORTED,
}

# How long a device may stay silent during a procedure: meters answer within a connection
# interval or two; 10 s covers slow ones (Tidepool retries "get records" after 5 s).
RACP_IDLE_TIMEOUT_S = 10.0


class RacpClient:
    """Requests over the RACP characteristic of one link.

    Call `on_indication` from the RACP subscription callback and `record_arrived` from the
    measurement callback (it keeps a long report's idle timer alive).
    """

    def __init__(self, link: GattLink, *, idle_timeout_s: float = RACP_IDLE_TIMEOUT_S) -> None:
        self._link = link
        self._idle_timeout_s = idle_timeout_s
        self._pending: asyncio.Future[RacpResponse] | None = None
        self._activity = 0

    def on_indication(self, value: bytes) -> None:
        """Feed a RACP indication from the device."""
        try:
            response = parse_racp(value)
        except ParseError as exc:
            _LOGGER.warning("%s: ignoring malformed RACP indication: %s", self._link.address, exc)
            return
        if self._pending is None or self._pending.done():
            _LOGGER.debug("%s: RACP indication with no request pending", self._link.address)
            return
        self._pending.set_result(response)

    def record_arrived(self) -> None:
        """Note device activity during a report."""
        self._activity += 1

    async def request(self, data: bytes, what: str) -> RacpResponse:
        """Write one request and wait for the response that ends it.

        Args:
            data: The request bytes (`drivers.gatt.racp.report_all()` …).
            what: The request for messages (``"count of records"``).

        Returns:
            The device's response (general response or record count).

        Raises:
            DisconnectedError: The link dropped before the response.
            LinkTimeoutError: The device went silent for `idle_timeout_s`.
            ProtocolError: The write was refused (ATT error).
        """
        loop = asyncio.get_running_loop()
        # Created before the write: the response can arrive before the write call returns.
        self._pending = loop.create_future()
        pending = self._pending
        await self._link.write(uuids.RECORD_ACCESS_CONTROL_POINT, data, response=True)
        while True:
            seen = self._activity
            try:
                return await wait_for(
                    self._link,
                    asyncio.shield(pending),
                    timeout_s=self._idle_timeout_s,
                    what=f"RACP response to {what}",
                )
            except LinkTimeoutError:
                if self._activity == seen:
                    pending.cancel()
                    raise

    async def count(self, data: bytes, what: str) -> int | None:
        """Run a count request; None if the device does not support that count."""
        response = await self.request(data, what)
        if response.op_code is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
            return response.number_of_records
        _LOGGER.info("%s: %s not supported (%s)", self._link.address, what, _code_name(response))
        return None

    async def report(self, data: bytes, what: str) -> bool | None:
        """Run a report request.

        Returns:
            True on success, False when the device has no such records, None when it does not
            support the request (op code, operator or operand).

        Raises:
            ProtocolError: Any other response code (procedure not completed, …).
        """
        response = await self.request(data, what)
        code = response.response_code
        if code is RacpResponseCode.SUCCESS:
            return True
        if code is RacpResponseCode.NO_RECORDS_FOUND:
            return False
        if code in _UNSUPPORTED:
            _LOGGER.info("%s: %s not supported (%s)", self._link.address, what, code.name)
            return None
        msg = (
            f"{self._link.address}: meter answered {what} with {_code_name(response)}; "
            "read it again, and update the meter firmware if this persists"
        )
        raise ProtocolError(msg)


def _code_name(response: RacpResponse) -> str:
    code = response.response_code
    return code.name if code is not None else response.op_code.name
