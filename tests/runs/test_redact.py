"""Credential formats the log redacts even when nobody declared them, and text it leaves alone."""

import pytest

from codeact.runs.redact import Redactor

# Built from parts, so this file holds no string a secret scanner would flag as a real key.
JWT = "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJ" + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFsaWNlIn0" + \
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7Mh\n" + \
    "kXvG1c0qSDBc2YwRGmKp4eQ5zVxBqkWZ\n-----END RSA " + "PRIVATE KEY-----"
ALNUM = "Zx9" + "Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8Vb7Nm6"

CASES = {
    "jwt": f"Authorization header was {JWT} for alice",
    "pem": f"key file:\n{PEM}\nend of file",
    "pem-json": "{\"private_key\": \"-----BEGIN " + "PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END " +
                "PRIVATE KEY-----\\n\"}",
    "pem-cut": "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u",
    "pgp": "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----\nlQOYBF0AAAAB\n-----END PGP " + "PRIVATE KEY BLOCK-----",
    "openai": "OPENAI=sk-" + "proj-" + ALNUM,
    "openai-svc": "sk-" + "svcacct-" + ALNUM,
    "anthropic": "x-api-key: sk-" + "ant-api03-" + ALNUM + "_AA",
    "github": "token ghp" + "_" + ALNUM[:36],
    "github-pat": "github" + "_pat_" + "11ABCDEFG0" + ALNUM,
    "gitlab": "glpat" + "-" + ALNUM[:20],
    "aws-id": "AKIA" + "IOSFODNN7EXAMPLE",
    "aws-secret": "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
    "slack-bot": "xoxb" + "-123456789012-1234567890123-" + ALNUM[:24],
    "slack-app": "xapp" + "-1-A0123456789-1234567890123-" + ALNUM[:20],
    "slack-webhook": "https://hooks.slack.com/services/" + "T00000000/B00000000/" + ALNUM[:24],
    "stripe": "sk" + "_live_" + ALNUM[:24],
    "stripe-restricted": "rk" + "_test_" + ALNUM[:24],
    "stripe-webhook": "whsec" + "_" + ALNUM[:32],
    "google": "AIza" + "SyD" + ALNUM[:32],
    "google-oauth": "ya29" + ".a0AfH6SMB" + ALNUM,
    "google-client-secret": "GOCSPX" + "-" + ALNUM[:28],
    "huggingface": "hf" + "_" + ALNUM[:34],
    "npm": "npm" + "_" + ALNUM[:36],
    "pypi": "pypi" + "-AgEIcHlwaS5vcmc" + ALNUM + ALNUM,
    "sendgrid": "SG" + "." + ALNUM[:22] + "." + (ALNUM + ALNUM)[:43],
    "digitalocean": "dop" + "_v1_" + "a" * 64,
    "azure": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + (ALNUM * 3)[:88] + "==;",
    "url-password": "postgres://app:" + "hunter2-Secret" + "@db.internal:5432/app",
    "bearer": "Authorization: Bearer " + ALNUM,
    "basic": "Authorization: Basic " + "YWxhZGRpbjpvcGVuc2VzYW1l",
}
SECRET_PART = {
    "jwt": "SflKxwRJSMeKKF2QT4fw", "pem": "MIIEowIBAAKCAQEA", "pem-json": "MIIEvQIBADANBgkq",
    "pem-cut": "b3BlbnNzaC1rZXkt", "pgp": "lQOYBF0AAAAB", "aws-secret": "wJalrXUtnFEMI",
    "url-password": "hunter2", "basic": "YWxhZGRpbjpvcGVu", "azure": ALNUM[:20], "digitalocean": "a" * 64,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_format_is_redacted(name):
    text = CASES[name]
    clean = Redactor(formats=True).text(text)
    assert "[REDACTED:" in clean, clean
    assert SECRET_PART.get(name, ALNUM[:16]) not in clean, clean


def test_labels_around_a_secret_stay():
    assert Redactor().text(CASES["url-password"]) == "postgres://app:[REDACTED:url-password]@db.internal:5432/app"
    assert Redactor().text(CASES["aws-secret"]) == "aws_secret_access_key = [REDACTED:aws-secret]"
    assert Redactor().text(CASES["pem"]) == "key file:\n[REDACTED:private-key]\nend of file"


ORDINARY = [
    "The task is to skim the list and pick the risk-free option; use sk-learn style APIs.",
    "def get_token(self):\n    return self._token  # password = input('Password: ')\n",
    "token = tokens[0]; secret_key = settings.SECRET_KEY; api_key = os.environ['API_KEY']",
    "ghost_town and gh_pages; AKIAL is not a key; xoxo from Slack; eyJ alone; ya29 is a number",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "See https://example.com/a:b@c and mailto:alice@example.com, at 12:30 on host:8080.",
    "Basic arithmetic: 2 + 2 = 4. Bearer bonds were sold. sk-1 and hf_hub_download().",
    "Basic internationalization comes first; the Authorization header is optional.",
    "import base64\nprint(base64.b64encode(b'hello world, this is ordinary data'))",
    "SELECT * FROM users WHERE name = 'stripe_customer_id' AND email LIKE '%@x.org'",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_and_code_are_left_alone(text):
    assert Redactor().text(text) == text
