"""One typed settings object, read from the environment when a process starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Process settings. The two connection settings keep their conventional names; everything
    else is prefixed ``OSSBSS_``."""

    model_config = SettingsConfigDict(env_prefix="OSSBSS_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"),
        description="Existing Kafka brokers (host:port,...). Unset: an embedded broker is started.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL"),
        description="Existing PostgreSQL (a role allowed to create roles and schemas). "
        "Unset: an embedded server is started.",
    )
    state_dir: Path = Field(
        default=Path(".state"), description="Where the embedded PostgreSQL keeps its data."
    )
    topology_path: Path = Field(default=PROJECT_ROOT / "topology.yaml", description="The bus declaration.")
    broker_port: int | None = Field(default=None, description="Embedded broker port (default: free).")
    postgres_port: int | None = Field(default=None, description="Embedded PostgreSQL port.")
    log_level: str = Field(default="INFO", description="Root log level.")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, JSON otherwise."
    )
    oss_db_password: str = Field(default="oss", description="Password of the OSS database role.")
    bss_db_password: str = Field(default="bss", description="Password of the BSS database role.")
    consumer_max_batch: int = Field(default=2000, ge=1, description="Records per consumer batch.")
    consumer_poll_ms: int = Field(default=50, ge=1, description="Longest wait for a batch.")
    rebalance_timeout_ms: int = Field(default=3000, ge=1000, description="Group rebalance timeout.")
    network_file: Path = Field(
        default=PROJECT_ROOT / "demo" / "network.yaml",
        description="Network description: inventory's first load, and what the probes watch.",
    )
    customers_file: Path = Field(
        default=PROJECT_ROOT / "demo" / "customers.yaml", description="CRM's first load."
    )
    probe_rate: float = Field(default=0.5, ge=0, description="Simulated alarms per second.")
    usage_rate: float = Field(default=20.0, ge=0, description="Simulated usage records per second.")
    workforce_file: Path = Field(
        default=PROJECT_ROOT / "demo" / "workforce.yaml",
        description="Workforce regions and technicians: OSS workforce's first load.",
    )
    field_visit_seconds: float = Field(
        default=40.0, ge=0, description="Length of a simulated technician's visit (0: no simulated crew)."
    )
    kpi_interval: float = Field(
        default=5.0, ge=0, description="Seconds between KPI samples of each link (0: off)."
    )
    dedup_retention_hours: float = Field(
        default=168.0, gt=0, description="How long consumed event ids are kept to recognise redeliveries."
    )
    summary_interval: float = Field(default=5.0, gt=0, description="Seconds between summaries.")
    http_host: str = Field(default="127.0.0.1", description="Address the dashboard and HTTP API listen on.")
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="Port of the dashboard and HTTP API (0: any free port)."
    )
    receivers: str = Field(
        default="snmp,syslog,ves,cdr",
        description="Protocol receivers `ossbss up` starts, comma-separated (empty: none).",
    )
    receiver_host: str = Field(default="127.0.0.1", description="Address the protocol receivers listen on.")
    snmp_port: int = Field(
        default=1162, ge=0, le=65535, description="SNMP trap port, UDP (0: any free port)."
    )
    syslog_port: int = Field(
        default=1514, ge=0, le=65535, description="Syslog port, UDP and TCP (0: any free port)."
    )
    ves_port: int = Field(
        default=8081, ge=0, le=65535, description="VES event listener port, HTTP (0: any free port)."
    )
    cdr_inbox: Path = Field(
        default=Path(".state/cdr-inbox"), description="Folder whose CSV CDR files are loaded as they arrive."
    )
    syslog_rules_file: Path = Field(
        default=PROJECT_ROOT / "demo" / "syslog-rules.yaml", description="Syslog match rules into alarms."
    )
    snmp_community: str = Field(
        default="public", min_length=1, description="SNMP v1/v2c community the trap receiver accepts."
    )
    cdr_mapping: Literal["auto", "asterisk", "generic"] = Field(
        default="auto",
        description="Column layout of the CDR files in the inbox (auto: a header row means generic, "
        "else Asterisk Master.csv).",
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must start with postgresql:// or postgres://")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"KAFKA_BOOTSTRAP_SERVERS entry {server!r} is not host:port")
        return value
