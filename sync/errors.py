"""Errors raised by the sync package.

    SyncError
    ├── RetryableSyncError          try the same request again later (retry_after, if told)
    │   ├── OfflineError            Junction unreachable (DNS, refused, no route): not the
    │   │                           request's fault, so retries are not counted
    │   ├── UploadTimeoutError      connect/read timed out or the connection dropped; the
    │   │                           outcome is unknown, so resend (Junction upserts)
    │   └── ServerBusyError         408, 429 or 5xx (status, body)
    ├── PermanentSyncError          this request will never succeed as it is
    │   └── RejectedError           any other 4xx (status, body): dead-letter the readings
    └── AuthError                   about a user's credentials, not about the readings
        ├── NotSignedInError        no tokens for this user yet: wait for a sign-in token
        ├── SignInTokenRejectedError  the exchange refused the sign-in token (already
        │                           used or expired): ask the backend for a new one
        ├── UnauthorizedError       401 even after one refresh (or with the team API key)
        ├── InvalidTokenError       `invalid_token`: user deleted or token revoked; the
        │                           user's credentials have been purged
        └── ReauthenticationRequiredError   `reauthentication_required`: park the user
                                    until a new sign-in token arrives

`sync.junction.client` is the one boundary that turns httpx exceptions and HTTP statuses
into these (`raise … from exc`); callers classify with `RETRYABLE` / `PERMANENT` tuples.
Messages lead with the subject and end with a remedy.
"""


class SyncError(Exception):
    """Root of every error the sync package raises."""


class RetryableSyncError(SyncError):
    """The same request may succeed later.

    Attributes:
        retry_after: Seconds the server asked us to wait (``Retry-After``), if it did.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OfflineError(RetryableSyncError):
    """Junction could not be reached at all; nothing was sent."""


class UploadTimeoutError(RetryableSyncError):
    """A timeout or dropped connection: Junction may or may not have stored the data."""


class HttpStatusMixin:
    """Carries the HTTP status and (truncated) response body of a refusal."""

    status_code: int
    body: str


class ServerBusyError(RetryableSyncError, HttpStatusMixin):
    """Junction answered 408, 429 or 5xx."""

    def __init__(
        self, message: str, *, status_code: int, body: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status_code = status_code
        self.body = body


class PermanentSyncError(SyncError):
    """The request will never succeed as it is; do not retry it."""


class RejectedError(PermanentSyncError, HttpStatusMixin):
    """Junction refused the request with a 4xx that retrying cannot fix."""

    def __init__(self, message: str, *, status_code: int, body: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class AuthError(SyncError):
    """A user's credentials are missing, refused or revoked.

    Attributes:
        user_id: The user concerned.
    """

    def __init__(self, message: str, *, user_id: str) -> None:
        super().__init__(message)
        self.user_id = user_id


class NotSignedInError(AuthError):
    """No tokens are stored for the user."""


class SignInTokenRejectedError(AuthError):
    """Junction refused a Sign-In Token at the exchange (already used, or expired)."""


class UnauthorizedError(AuthError):
    """Junction answered 401 even after a token refresh, or refused the team API key."""


class InvalidTokenError(AuthError):
    """The user's refresh token is invalid (user deleted or token revoked)."""


class ReauthenticationRequiredError(AuthError):
    """Junction wants a new sign-in token for the user."""


RETRYABLE: tuple[type[SyncError], ...] = (RetryableSyncError,)
PERMANENT: tuple[type[SyncError], ...] = (PermanentSyncError,)
