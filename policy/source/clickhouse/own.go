package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/policy"
)

// ownQuery runs a metric's own SQL and reads its answer by column name: variant, n, sum and sumsq
// (testable), or variant and value (advisory); bucket, when present, makes the sums per key bucket.
func (s *Source) ownQuery(ctx context.Context, q policy.Query, m policy.MetricQuery, from time.Time, stats *policy.Stats) error {
	sql := bindPlaceholders(m.Query, map[string]string{
		"{{rollout}}": quote(q.Rollout), "{{from}}": dateTime(from), "{{to}}": dateTime(q.Window.To),
	})
	sql = strings.TrimRight(strings.TrimSpace(sql), ";") + "\nFORMAT TabSeparatedWithNames"
	var col map[string]int
	type sums struct {
		n, sum, sumSq float64
		value         *float64
		clusters      map[int]*policy.Cluster
		hasSumSq      bool
	}
	arms := map[string]*sums{}
	err := s.query(ctx, sql, func(f []string) error {
		if col == nil {
			col = map[string]int{}
			for i, name := range f {
				col[strings.ToLower(name)] = i
			}
			_, hasVariant := col["variant"]
			_, hasN := col["n"]
			_, hasSum := col["sum"]
			_, hasValue := col["value"]
			if !hasVariant || !(hasN && hasSum || hasValue) {
				return fmt.Errorf("columns %s; want variant, n, sum and sumsq (or variant and value)", strings.Join(f, ", "))
			}
			return nil
		}
		if len(f) != len(col) {
			return fmt.Errorf("%d fields in a row of %d columns", len(f), len(col))
		}
		variant := f[col["variant"]]
		if _, ok := armIndex(variant); !ok {
			return nil
		}
		a := arms[variant]
		if a == nil {
			a = &sums{clusters: map[int]*policy.Cluster{}}
			arms[variant] = a
		}
		get := func(name string) (float64, bool, error) {
			i, ok := col[name]
			if !ok || f[i] == `\N` {
				return 0, false, nil
			}
			v, err := numbers([]string{f[i]})
			if err != nil {
				return 0, false, fmt.Errorf("%s: %w", name, err)
			}
			return v[0], true, nil
		}
		if _, ok := col["n"]; !ok {
			v, ok, err := get("value")
			if err != nil || !ok {
				return err
			}
			a.value = &v
			return nil
		}
		n, okN, err := get("n")
		if err != nil {
			return err
		}
		sum, okSum, err := get("sum")
		if err != nil {
			return err
		}
		sumSq, okSq, err := get("sumsq")
		if err != nil {
			return err
		}
		if !okN || !okSum || n <= 0 {
			return nil // no data for this arm (or bucket)
		}
		a.n, a.sum, a.sumSq = a.n+n, a.sum+sum, a.sumSq+sumSq
		a.hasSumSq = a.hasSumSq || okSq
		if b, ok, err := get("bucket"); err != nil {
			return err
		} else if ok {
			if b < 0 || b >= policy.KeyBuckets {
				return fmt.Errorf("bucket %g outside [0, %d)", b, policy.KeyBuckets)
			}
			c := a.clusters[int(b)]
			if c == nil {
				c = &policy.Cluster{Bucket: int(b)}
				a.clusters[int(b)] = c
			}
			c.N, c.Sum, c.SumSquares = c.N+n, c.Sum+sum, c.SumSquares+sumSq
		}
		return nil
	})
	if err != nil {
		return err
	}
	for variant, a := range arms {
		arm := stats.Arm(policy.Arm(variant))
		if a.value != nil {
			// A bare value has no sampling information; N carries the arm's request count for the
			// evidence table, as the Prometheus source does.
			arm.Metrics[m.Name] = policy.Sample{Kind: policy.Value, N: max(arm.Requests, 1), Sum: *a.value}
			continue
		}
		if a.n <= 0 {
			continue
		}
		sample := policy.Sample{Kind: policy.Proportion, N: int64(a.n), Sum: a.sum}
		if a.hasSumSq {
			sample = policy.Sample{Kind: policy.Mean, N: int64(a.n), Sum: a.sum, SumSquares: a.sumSq}
		}
		for b := 0; b < policy.KeyBuckets && len(a.clusters) > 0; b++ {
			if c := a.clusters[b]; c != nil {
				if !a.hasSumSq {
					c.SumSquares = 0
				}
				sample.Clusters = append(sample.Clusters, *c)
			}
		}
		arm.Metrics[m.Name] = sample
	}
	return nil
}

// bindPlaceholders replaces each known placeholder of sql by its literal. An unknown one is left for
// ClickHouse to reject, naming it.
func bindPlaceholders(sql string, values map[string]string) string {
	var b strings.Builder
	for {
		start := strings.Index(sql, "{{")
		if start < 0 {
			break
		}
		end := strings.Index(sql[start:], "}}")
		if end < 0 {
			break
		}
		name := sql[start : start+end+2]
		b.WriteString(sql[:start])
		if v, ok := values[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(name)
		}
		sql = sql[start+end+2:]
	}
	b.WriteString(sql)
	return b.String()
}
