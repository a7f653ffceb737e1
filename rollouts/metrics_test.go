package rollouts

import (
	"slices"
	"sort"
	"testing"
)

// The ordered list and the table name the same metrics, so no source computes one the validator rejects.
func TestBuiltinMetricNamesMatchTheTable(t *testing.T) {
	names := append(slices.Clone(BuiltinMetricNames), ExtraMetrics...)
	sort.Strings(names)
	if !slices.Equal(names, builtinMetricNames()) {
		t.Errorf("BuiltinMetricNames %v, BuiltinMetrics %v", names, builtinMetricNames())
	}
}
