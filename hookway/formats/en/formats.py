# Django date-format characters: 2026-11-23 14:25:07 UTC (the zone of TIME_ZONE).
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
