"""Typed configuration of the manager, the agent and the CLI.

Each model is loaded from a TOML file and may be overridden by environment variables
``CALLHOME_<SECTION>__<KEY>`` (for instance ``CALLHOME_API__LISTEN=127.0.0.1:9000``); a
list field takes a comma-separated list or a TOML array
(``CALLHOME_ALGORITHMS__CIPHERS=aes256-ctr,aes128-ctr``).
Relative paths in a file are taken relative to the file's folder.

The models live by theme: :mod:`~callhome.config.common` (ports, SSH algorithms, keepalives,
cert-to-name, TLS versions: what both sides share), :mod:`~callhome.config.manager`
(``manager.toml``), :mod:`~callhome.config.agent` (``agent.toml``) and
:mod:`~callhome.config.loading` (reading the files). Import them from here.
"""

from __future__ import annotations

from callhome.config.agent import (
    Access,
    AgentConfig,
    AgentNotificationsSection,
    AgentSnmpSection,
    AgentTlsSection,
    AgentTurnSection,
    Endpoint,
    ManagerEntry,
    ReconnectConfig,
    SnmpTarget,
    SnmpUser,
    StartWith,
    UpsIdentConfig,
    YangSection,
)
from callhome.config.common import (
    DEFAULT_API_PORT,
    DEFAULT_SNMP_TLS_PORT,
    DEFAULT_SSH_PORT,
    DEFAULT_TLS_PORT,
    DEFAULT_TURN_PORT,
    CertToNameRule,
    KeepaliveConfig,
    MapType,
    SshAlgorithms,
    TlsVersion,
    parse_hostport,
)
from callhome.config.loading import (
    default_client_file,
    load,
    load_api_tokens,
)
from callhome.config.manager import (
    ApiSection,
    ApiToken,
    ApiTokens,
    Credential,
    GuardSection,
    JobsSection,
    ManagerConfig,
    ManagerNotificationsSection,
    ManagerSection,
    ManagerSnmpSection,
    ManagerTlsSection,
    ManagerTurnSection,
    RetentionRule,
    RetentionSection,
    Right,
    TerminalSection,
)

__all__ = [
    "DEFAULT_API_PORT",
    "DEFAULT_SNMP_TLS_PORT",
    "DEFAULT_SSH_PORT",
    "DEFAULT_TLS_PORT",
    "DEFAULT_TURN_PORT",
    "Access",
    "AgentConfig",
    "AgentNotificationsSection",
    "AgentSnmpSection",
    "AgentTlsSection",
    "AgentTurnSection",
    "ApiSection",
    "ApiToken",
    "ApiTokens",
    "CertToNameRule",
    "Credential",
    "Endpoint",
    "GuardSection",
    "JobsSection",
    "KeepaliveConfig",
    "ManagerConfig",
    "ManagerEntry",
    "ManagerNotificationsSection",
    "ManagerSection",
    "ManagerSnmpSection",
    "ManagerTlsSection",
    "ManagerTurnSection",
    "MapType",
    "ReconnectConfig",
    "RetentionRule",
    "RetentionSection",
    "Right",
    "SnmpTarget",
    "SnmpUser",
    "SshAlgorithms",
    "StartWith",
    "TerminalSection",
    "TlsVersion",
    "UpsIdentConfig",
    "YangSection",
    "default_client_file",
    "load",
    "load_api_tokens",
    "parse_hostport",
]
