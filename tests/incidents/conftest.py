from tests.comms.conftest import smtp_server, smtp_settings  # noqa: F401 (shared real SMTP receiver)
