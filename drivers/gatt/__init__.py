"""Pure parsers for the Bluetooth SIG characteristics the drivers read, one module per service.

Each parser takes the characteristic value as `bytes` and returns a frozen dataclass named after
the spec, keeping every flag and status bit, the device's own units and its raw clock fields.
Malformed input raises `drivers.errors.ParseError(field, offset, reason)` and nothing else.
"""

from drivers.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    IntermediateCuffPressure,
    PulseRateRange,
    parse_blood_pressure_measurement,
    parse_intermediate_cuff_pressure,
)
from drivers.gatt.body_composition import (
    BodyCompositionMeasurement,
    merge_body_composition,
    parse_body_composition_measurement,
)
from drivers.gatt.current_time import AdjustReason, CurrentTime, parse_current_time
from drivers.gatt.glucose import (
    CarbohydrateId,
    GlucoseContext,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseSampleType,
    Health,
    Meal,
    MedicationId,
    MedicationUnit,
    SampleLocation,
    SensorStatus,
    Tester,
    parse_glucose_context,
    parse_glucose_feature,
    parse_glucose_measurement,
)
from drivers.gatt.ieee11073 import DayOfWeek, decode_float, decode_sfloat
from drivers.gatt.racp import (
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    parse_racp,
    parse_racp_request,
)
from drivers.gatt.user_data import (
    UserControlOpCode,
    UserControlRequest,
    UserControlResponse,
    UserControlResult,
    parse_user_control_request,
    parse_user_control_response,
)
from drivers.gatt.weight_scale import WeightMeasurement, parse_weight_measurement

__all__ = [
    "AdjustReason",
    "BloodPressureMeasurement",
    "BloodPressureStatus",
    "BodyCompositionMeasurement",
    "CarbohydrateId",
    "CurrentTime",
    "DayOfWeek",
    "GlucoseContext",
    "GlucoseFeature",
    "GlucoseMeasurement",
    "GlucoseSampleType",
    "Health",
    "IntermediateCuffPressure",
    "Meal",
    "MedicationId",
    "MedicationUnit",
    "PulseRateRange",
    "RacpFilterType",
    "RacpOpCode",
    "RacpOperator",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseCode",
    "SampleLocation",
    "SensorStatus",
    "Tester",
    "UserControlOpCode",
    "UserControlRequest",
    "UserControlResponse",
    "UserControlResult",
    "WeightMeasurement",
    "decode_float",
    "decode_sfloat",
    "merge_body_composition",
    "parse_blood_pressure_measurement",
    "parse_body_composition_measurement",
    "parse_current_time",
    "parse_glucose_context",
    "parse_glucose_feature",
    "parse_glucose_measurement",
    "parse_intermediate_cuff_pressure",
    "parse_racp",
    "parse_racp_request",
    "parse_user_control_request",
    "parse_user_control_response",
    "parse_weight_measurement",
]
