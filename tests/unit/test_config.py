import pytest

from tksh.config import ConfigError, OperatorConfig


def test_environment_is_read_and_overrides_win() -> None:
    config = OperatorConfig.from_env(
        {"TKSH_NAMESPACES": "tksh, housing", "TKSH_SMTP_PORT": "2525", "TKSH_STANDALONE": "true"},
        smtp_host="mail.local",
    )
    assert config.namespaces == ("tksh", "housing")
    assert config.smtp_port == 2525
    assert config.standalone is True
    assert config.smtp_host == "mail.local"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TKSH_SMTP_PORT": "twenty-five"}, "TKSH_SMTP_PORT"),
        ({"TKSH_SMTP_PORT": "70000"}, "smtp_port"),
        ({"TKSH_NAMESPACES": "Bad_Name"}, "namespaces"),
        ({"TKSH_SERVER": "ftp://x"}, "server"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OperatorConfig.from_env(env)
