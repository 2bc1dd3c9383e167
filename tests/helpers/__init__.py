"""What the tests share: real servers (``servers``), HTTP clients (``http``), queue engines and
their journal (``queue``), client behaviours for other processes (``clients``), a crowd of SSE
waiters (``crowd``) and the settings every test starts from (``env``)."""
