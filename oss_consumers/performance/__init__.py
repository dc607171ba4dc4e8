"""Performance: KPI windows, threshold crossings with hysteresis."""
