"""The one home for settings: environment variables with the ``SHOUWANG_`` prefix.

Every process reads its configuration from here; nothing else reads ``os.environ`` for
Shouwang's own settings. Defaults run the whole service on one machine (embedded broker,
SQLite under ``var/``). The README's settings table is generated from these fields.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_ADMIN_TOKEN_CHARS = 32

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class Settings(BaseSettings):
    """Runtime settings. Field docs are the documentation (see ``shouwang settings``)."""

    model_config = SettingsConfigDict(env_prefix="SHOUWANG_", extra="ignore", frozen=True)

    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers, `host:port[,host:port…]`. Unset: the embedded "
        "local broker on 127.0.0.1:`broker_port`, started by `shouwang up`.",
    )
    broker_port: int = Field(default=19092, ge=1024, le=65535, description="Client port of the embedded local broker.")
    broker_controller_port: int = Field(
        default=19093, ge=1024, le=65535, description="KRaft controller port of the embedded broker."
    )
    broker_heap: str = Field(
        default="768m",
        pattern=r"^\d+[mg]$",
        description="Java heap (-Xmx) of the embedded broker (of each node of a local cluster).",
    )
    broker_nodes: int = Field(
        default=1,
        description="Nodes of the embedded Kafka: 1, or 3 or 5 for a local cluster on this machine, each node a "
        "broker and a controller with its data under `var_dir`/kafka-cluster/node-n; node n listens on `broker_port` "
        "+ 2(n−1) and `broker_controller_port` + 2(n−1). `shouwang broker start --nodes 3` overrides it.",
    )
    var_dir: Path = Field(
        default=REPO_ROOT / "var", description="Where the embedded broker, databases and logs keep their data."
    )
    broker_lib_dir: Path = Field(
        default=REPO_ROOT / "broker" / "lib", description="Folder of the embedded broker's jars (resolved by Maven)."
    )

    topic_prefix: str = Field(
        default="shouwang.",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="Prefix of every topic name (lets several stacks share a cluster).",
    )
    readings_partitions: int = Field(
        default=8, ge=1, le=10_000, description="Partitions of the readings topic (keyed by meter id)."
    )
    incidents_partitions: int = Field(default=2, ge=1, le=10_000, description="Partitions of the incidents topic.")
    alerts_partitions: int = Field(
        default=4, ge=1, le=10_000, description="Partitions of the alerts topic (keyed by meter id)."
    )
    deadletter_partitions: int = Field(default=1, ge=1, le=10_000, description="Partitions of the dead-letter topic.")
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="Replication factor of the topics Shouwang creates. Unset: as many brokers as the cluster has "
        "live, at most 3 (min.insync.replicas 2 from 3 replicas on). Set it on a cluster of known size: creating a "
        "topic then fails while too few brokers are up, rather than creating it with fewer copies.",
    )
    readings_retention_hours: int = Field(default=7 * 24, ge=1, description="Retention of the readings topic.")
    incidents_retention_hours: int = Field(default=90 * 24, ge=1, description="Retention of the incidents topic.")
    alerts_retention_hours: int = Field(default=90 * 24, ge=1, description="Retention of the alerts topic.")
    deadletter_retention_hours: int = Field(default=30 * 24, ge=1, description="Retention of the dead-letter topic.")
    feedback_retention_hours: int = Field(
        default=30 * 24,
        ge=1,
        description="Retention of the feedback topic (verdicts on alarms, routine hints; partitions: the readings').",
    )
    daily_retention_hours: int = Field(
        default=7 * 24,
        ge=1,
        description="Retention of the daily topic (each meter's day summaries for the all-is-well message; "
        "partitions: the alerts').",
    )
    retention_payload_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="A notification's stored body (the elder's name, address, hourly water use) is emptied this "
        "many days after its delivery ended (delivered, or dead); the delivery's status and times stay.",
    )
    retention_alert_facts_days: int = Field(
        default=180,
        ge=1,
        le=3650,
        description="A closed alert keeps its personal facts (explanation naming times, hourly water use, notes, "
        "who acted) this many days after it closed; then only its anonymous statistics remain (kind, severity, "
        "times, outcome, grid cell), which the monthly reports count.",
    )
    retention_attempts_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Delivery attempts (each try's status code and error) older than this many days are deleted; "
        "the delivery's final status stays.",
    )
    retention_daily_days: int = Field(
        default=35,
        ge=14,
        le=3650,
        description="Meters' day summaries (the morning's first water use, litres) are kept this many days; the "
        "all-is-well message reads at most the last week of them.",
    )
    retention_check_s: float = Field(
        default=3600.0, gt=0, le=86_400, description="How often the router enforces the retention settings."
    )

    worker_id: str = Field(
        default="shouwang-worker",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="Faust app id: the consumer group of the detector workers.",
    )
    worker_web_host: str = Field(
        default="127.0.0.1", description="Interface of the worker's HTTP port (0.0.0.0 in containers)."
    )
    worker_web_port: int = Field(
        default=6066, ge=1024, le=65535, description="HTTP port of the worker (health and Prometheus metrics)."
    )
    worker_store: str = Field(
        default="memory://",
        pattern=r"^(memory|rocksdb)://.*$",
        description="Faust table store: `memory://` or `rocksdb://` (needs rocksdict).",
    )

    detectors_pure: bool = Field(
        default=False,
        description="Run the household detectors as plain Python even where `make install` "
        "compiled them with mypyc: the same findings, but the bank's update of a reading takes about four "
        "times as long. Read when `detectors` is imported (`detectors/compiled.py`).",
    )

    household_tz: str = Field(
        default="Asia/Shanghai",
        description="IANA time zone of the households: the detectors learn "
        "routines by local hour of day (replay's `--tz` overrides it).",
    )
    no_usage_false_alarms_per_month: float = Field(
        default=0.3,
        gt=0,
        le=30,
        description="Sensitivity of `no_usage`: the alarms per household and "
        "month it may raise on silences that end by themselves. Lower is quieter and slower "
        "(trade-off curve in docs/DETECTION.md).",
    )
    offline_min_h: float = Field(
        default=6.0,
        ge=0.5,
        le=720,
        description="`meter_offline` waits at least this long after a meter's "
        "last reading (event time), and three of its usual intervals. Meters that upload a day of readings "
        "at once need more than a day here.",
    )
    offline_check_s: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="How often the worker asks silent meters' detectors whether they are overdue.",
    )
    clock_skew_s: float = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="How far after the receiving clock (API and worker) a reading's time may be: later ones are "
        "refused, so a reading dated in the future can never move a meter's clock and blind its detectors.",
    )
    no_usage_ceiling_h: float = Field(
        default=18.0, ge=4, le=24, description="A silence this long raises `no_usage` whatever the household's rhythm."
    )
    check_ins_per_month: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="`no_usage` asks the resident first (a household with a `resident` channel): how often a month "
        "it may ask about silences that end by themselves. 0: no check-ins, carers at the alarm limit as before.",
    )
    check_in_ceiling_h: float = Field(
        default=11.0,
        ge=4,
        le=24,
        description="A silence this long asks the resident whatever the household's rhythm (with hourly readings "
        "the question comes up to an hour later: 11 keeps it within 12 h).",
    )
    check_in_timeout: str = Field(
        default="30m",
        pattern=r"^\d+[smh]$",
        description="How long a resident has to answer a check-in before the family and grid worker are told.",
    )
    away_max_days: int = Field(
        default=30, ge=1, le=365, description="The longest away mode anyone may set, resident or staff (days)."
    )
    grid_neighbours: Path | None = Field(
        default=None,
        description='A JSON file of each grid cell\'s neighbouring cells, `{"FT-12-3": ["FT-12-2", "FT-12-4"]}` '
        "(made symmetric). The worker then also watches each cell with its neighbours, and raises one hotspot for "
        "an area where a kind of problem rises in several cells, none unusual alone. Read when the worker starts; "
        "a bad entry stops it with a line naming the entry. Unset: cells are watched one by one.",
    )
    silence_max_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="The longest silence (maintenance window, ad-hoc mute) anyone may set, from its start (days).",
    )

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the alert store. Unset: SQLite at "
        "`var/shouwang.db`. PostgreSQL: `postgresql+psycopg://user:pass@host/db`.",
    )
    router_id: str = Field(
        default="shouwang-router",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="Consumer group of the alert routers.",
    )
    router_metrics_port: int = Field(
        default=6067, ge=1024, le=65535, description="Port of the router's `/metrics`, `/healthz` and `/readyz`."
    )
    router_metrics_host: str = Field(default="127.0.0.1", description="Interface of the router's metrics port.")
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://\S+$",
        description="Base URL of the API as recipients reach it (acknowledge links).",
    )
    escalation: str | None = Field(
        default=None,
        description="Escalation chains per severity as JSON, e.g. "
        '`{"critical": [["family+grid_worker", "15m"], ["supervisor", "30m"], ["operator"]]}`. '
        "Unset: the defaults in `alerts/policy.py`.",
    )
    staff_ack_timeout: str = Field(
        default="critical=2h,high=4h,medium=12h,low=1d,info=1d",
        pattern=r"^\s*[a-z]+\s*=\s*\d+(\.\d+)?[smhd]\s*(,\s*[a-z]+\s*=\s*\d+(\.\d+)?[smhd]\s*)*$",
        description="Per severity, how long an alert a staff member acknowledged may stay unresolved before it is "
        "escalated again to the next tier (`severity=duration`, comma-separated; unlisted severities never).",
    )
    repeat_interval: str = Field(
        default="4h", pattern=r"^\d+[smhd]$", description="Reminder interval while an alert stays unacknowledged."
    )
    webhook_retry_schedule: str = Field(
        default="5s,5m,30m,2h,5h,10h,14h,20h,24h",
        description="Delays between webhook attempts (Standard Webhooks' schedule); then dead letter.",
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Timeout of one webhook attempt.")
    webhook_endpoint_concurrency: int = Field(
        default=2, ge=1, le=100, description="Parallel deliveries to one endpoint at most."
    )
    webhook_lease_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a router holds a delivery it is sending; "
        "after a crash another (or the restarted) router resends it then.",
    )
    webhook_allow_hosts: str = Field(
        default="",
        description="Comma-separated hosts or CIDR networks webhooks may reach even "
        "though they are private/loopback (the SSRF guard refuses those otherwise).",
    )
    webhook_require_https: bool = Field(
        default=True, description="Refuse plain-http webhook URLs (allowlisted hosts excepted)."
    )
    webhook_secret_overlap_h: float = Field(
        default=24.0,
        ge=0,
        le=24 * 30,
        description="After a webhook secret is rotated, deliveries are signed with the new and the old secret "
        "for this many hours (a receiver still on the old one keeps verifying), then with the new one only.",
    )

    api_host: str = Field(default="127.0.0.1", description="Interface the API listens on.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the API.")
    api_docs: bool = Field(default=False, description="Serve the interactive API docs (/docs, /redoc, /openapi.json).")
    api_max_body_bytes: int = Field(
        default=1_000_000, ge=1024, le=50_000_000, description="Largest request body the API accepts (413 beyond)."
    )
    ingest_rate_per_s: float = Field(
        default=200.0, gt=0, description="Readings per second one API key may ingest (sustained)."
    )
    ingest_burst: int = Field(
        default=20_000, ge=1, description="Readings one API key may ingest at once before the rate applies."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every process."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json` writes one JSON object per log line."
    )
    admin_token: SecretStr | None = Field(
        default=None, description="First operator API key (never logged); at least 32 characters."
    )
    channel_templates_dir: Path | None = Field(
        default=None,
        description="A folder of message templates that override the shipped ones (alerts/channels/templates/); "
        "every one is rendered once at start-up, and a broken one stops the process with its name.",
    )
    smtp_host: str | None = Field(
        default=None, description="Outgoing mail server of `email` channels. Unset: no email."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Port of the mail server.")
    smtp_username: str | None = Field(default=None, description="Login at the mail server (sent only over TLS).")
    smtp_password: SecretStr | None = Field(default=None, description="Password at the mail server (never logged).")
    smtp_from: str = Field(default="Shouwang <shouwang@localhost>", description="From header and envelope sender.")
    smtp_security: Literal["auto", "starttls", "tls"] = Field(
        default="auto", description="`auto`: STARTTLS when offered; `starttls`: required; `tls`: TLS from the start."
    )
    smtp_ca_file: Path | None = Field(default=None, description="A CA certificate to trust for a private mail relay.")
    sms_provider: Literal["aliyun", "tencent"] | None = Field(
        default=None, description="The SMS provider of `sms` channels: `aliyun` or `tencent`. Unset: no SMS."
    )
    sms_access_key_id: str = Field(default="", description="Aliyun AccessKeyId, or Tencent Cloud SecretId.")
    sms_access_key_secret: SecretStr | None = Field(
        default=None, description="Aliyun AccessKeySecret, or Tencent Cloud SecretKey (never logged)."
    )
    sms_sign_name: str = Field(default="", description="The approved SMS signature (签名), e.g. 守望.")
    sms_templates: str = Field(
        default="",
        description="JSON: message type (raised, updated, escalated, reminder, resolved, ping) → the approved "
        'template code, or {"code", "params"} with the template\'s variables in order (name, kind, time, link, '
        "outcome).",
    )
    sms_sdk_app_id: str = Field(default="", description="Tencent Cloud's SmsSdkAppId (Tencent only).")
    sms_endpoint: str | None = Field(default=None, description="The provider's base URL. Unset: its public endpoint.")
    sms_region: str | None = Field(
        default=None, description="The provider's region. Unset: cn-hangzhou / ap-guangzhou."
    )
    sms_max_variable_chars: int | None = Field(
        default=None, ge=6, description="Longest template variable. Unset: 35 (Aliyun) or 6 (Tencent)."
    )
    sms_link_prefix: str = Field(
        default="", description="The start of the link written in the approved template; the variable is the rest."
    )
    sms_mask_names: bool = Field(default=True, description="Text messages show the elder's surname only.")
    action_link_ttl_h: float = Field(
        default=72.0,
        gt=0,
        le=24 * 30,
        description="How long a one-tap action link in a notification stays valid (hours from the notification).",
    )
    monthly_report_at: str = Field(
        default="08:00",
        pattern=r"^(off|([01][0-9]|2[0-3]):[0-5][0-9])$",
        description="When, on the 1st of a month in the community's time zone, the router sends each supervisor "
        "last month's report (HH:MM); `off`: never.",
    )
    chromium: str | None = Field(
        default=None,
        description="The headless Chromium `shouwang report --format pdf` prints with. Unset: `chromium`, "
        "`chromium-browser`, `google-chrome` or `google-chrome-stable` on PATH.",
    )
    secret_keys: SecretStr | None = Field(
        default=None,
        description="Keys that encrypt channel credentials at rest (robot URLs, secrets, SMS and SMTP "
        "passwords): comma-separated Fernet keys, the first encrypts, all decrypt (rotation). Unset: "
        "one is generated at the first start into SHOUWANG_VAR_DIR/secret.key.",
    )

    @field_validator("admin_token")
    @classmethod
    def _admin_token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_ADMIN_TOKEN_CHARS} characters (a short token is guessable)")
        return value

    @field_validator("broker_nodes")
    @classmethod
    def _odd_quorum(cls, value: int) -> int:
        # Every node is a controller: an even quorum survives no more failures than the odd one below it.
        if value not in (1, 3, 5):
            raise ValueError("must be 1, 3 or 5 (the nodes form the controller quorum: a majority must be up)")
        return value

    @field_validator("household_tz")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Shanghai") from None
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        servers = [part.strip() for part in value.split(",")]
        bad = [s for s in servers if not _HOST_PORT.match(s)]
        if bad:
            raise ValueError(f"expected host:port[,host:port…], got {', '.join(bad)!r}")
        return ",".join(servers)

    @property
    def uses_embedded_broker(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def bootstrap_servers(self) -> str:
        """The servers clients connect to: the configured cluster or the embedded broker's nodes
        (all of them: a client must find the cluster while any one node is down)."""
        return self.kafka_bootstrap or ",".join(f"127.0.0.1:{port}" for port, _ in self.embedded_ports)

    @property
    def embedded_ports(self) -> list[tuple[int, int]]:
        """(client port, controller port) of each node of the embedded Kafka, node 1 first."""
        return [(self.broker_port + 2 * n, self.broker_controller_port + 2 * n) for n in range(self.broker_nodes)]

    @property
    def faust_broker_url(self) -> str:
        return ";".join(f"kafka://{server}" for server in self.bootstrap_servers.split(","))

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'shouwang.db'}"

    @property
    def webhook_allowlist(self) -> list[str]:
        return [item.strip() for item in self.webhook_allow_hosts.split(",") if item.strip()]

    @property
    def broker_dir(self) -> Path:
        return self.var_dir / "kafka"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def subprocess_env(self) -> dict[str, str]:
        """The environment that makes a ``shouwang`` subprocess use these settings (this process's
        environment without its own ``SHOUWANG_`` variables, then these)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
        env.update(
            {f"SHOUWANG_{name.upper()}": str(value) for name, value in self.model_dump(exclude_none=True).items()}
        )
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
