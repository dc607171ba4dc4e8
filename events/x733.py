"""ITU-T X.733 alarm vocabulary, spelled as TMF642 spells it."""

from __future__ import annotations

from enum import StrEnum


class PerceivedSeverity(StrEnum):
    """X.733 perceived severity (TMF642 ``perceivedSeverity``)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INDETERMINATE = "indeterminate"
    CLEARED = "cleared"


class AlarmType(StrEnum):
    """X.733 / X.736 event type (TMF642 ``alarmType``)."""

    COMMUNICATIONS = "communicationsAlarm"
    QUALITY_OF_SERVICE = "qualityOfServiceAlarm"
    PROCESSING_ERROR = "processingErrorAlarm"
    EQUIPMENT = "equipmentAlarm"
    ENVIRONMENTAL = "environmentalAlarm"
    INTEGRITY_VIOLATION = "integrityViolation"
    OPERATIONAL_VIOLATION = "operationalViolation"
    PHYSICAL_VIOLATION = "physicalViolation"
    SECURITY_VIOLATION = "securityServiceOrMechanismViolation"
    TIME_DOMAIN_VIOLATION = "timeDomainViolation"


class ProbableCause(StrEnum):
    """X.733 probable cause (TMF642 ``probableCause``); the subset our probes report."""

    LOSS_OF_SIGNAL = "lossOfSignal"
    LOSS_OF_FRAME = "lossOfFrame"
    LINK_FAILURE = "linkFailure"  # X.721 communicationsSubsystemFailure family, kept explicit
    COMMUNICATIONS_SUBSYSTEM_FAILURE = "communicationsSubsystemFailure"
    DEGRADED_SIGNAL = "degradedSignal"
    REMOTE_NODE_TRANSMISSION_ERROR = "remoteNodeTransmissionError"
    LOCAL_NODE_TRANSMISSION_ERROR = "localNodeTransmissionError"
    CONGESTION = "congestion"
    BANDWIDTH_REDUCED = "bandwidthReduced"
    PERFORMANCE_DEGRADED = "performanceDegraded"
    THRESHOLD_CROSSED = "thresholdCrossed"
    RESOURCE_AT_OR_NEARING_CAPACITY = "resourceAtOrNearingCapacity"
    EQUIPMENT_MALFUNCTION = "equipmentMalfunction"
    RECEIVER_FAILURE = "receiverFailure"
    TRANSMITTER_FAILURE = "transmitterFailure"
    POWER_PROBLEM = "powerProblem"
    COMMERCIAL_POWER_FAILURE = "commercialPowerFailure"
    BATTERY_DISCHARGING = "batteryDischarging"
    COOLING_FAN_FAILURE = "coolingFanFailure"
    HIGH_TEMPERATURE = "highTemperature"
    ENCLOSURE_DOOR_OPEN = "enclosureDoorOpen"
    SOFTWARE_ERROR = "softwareError"
    PROCESSOR_PROBLEM = "processorProblem"
    OUT_OF_MEMORY = "outOfMemory"
    TIMING_PROBLEM = "timingProblem"
    CONFIGURATION_OR_CUSTOMIZATION_ERROR = "configurationOrCustomizationError"
    AUTHENTICATION_FAILURE = "authenticationFailure"  # X.736 security alarm cause


class ResourceType(StrEnum):
    """Kinds of network resource an alarm can be raised on (TMF639 resource categories)."""

    SITE = "site"
    NODE = "node"
    LINK = "link"
    PORT = "port"
    CELL = "cell"


SERVICE_AFFECTING_SEVERITIES = frozenset({PerceivedSeverity.CRITICAL, PerceivedSeverity.MAJOR})
