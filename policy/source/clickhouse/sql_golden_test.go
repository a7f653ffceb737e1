package clickhouse

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/policy"
	"github.com/rollout-dev/rollout/rollouts"
)

var update = flag.Bool("update", false, "rewrite testdata/*.sql from the queries the source builds")

// TestDocumentedSQL keeps testdata/<schema>.sql equal to the queries the source sends for a typical
// tick, and docs/metrics-sources.md quoting each of them verbatim: the documentation shows the exact SQL.
func TestDocumentedSQL(t *testing.T) {
	from := time.Date(2026, 4, 16, 10, 0, 0, 0, time.UTC)
	re, err := globsToRegexp([]string{"vip-*"})
	if err != nil {
		t.Fatal(err)
	}
	sc := scope{rollout: "summarizer", from: from, to: from.Add(4 * time.Hour), notRandomised: re}
	docs, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "metrics-sources.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{rollouts.SchemaRollout, rollouts.SchemaLangfuse, rollouts.SchemaHelicone} {
		sch, err := schemaFor(name)
		if err != nil {
			t.Fatal(err)
		}
		got := "-- aggregates\n" + aggregatesSQL(sch, sc, wantedAggregates(policy.Query{Metrics: policy.Query{}.Wanted()})) + "\n\n-- latency bins\n" + binsSQL(sch, sc) + "\n"
		if sch.lateFrom != nil {
			got += "\n-- late records (only when the aggregates found some)\n" + lateSQL(sch, sc, startSQL(sch, sc)) + "\n"
		}
		if sch.name == rollouts.SchemaRollout {
			// With the rollup (a spec without include or exclude globs), from 10:07 to 14:00 with the
			// first canary record at 10:09:30.
			sc := scope{rollout: "summarizer", from: from.Add(7 * time.Minute), to: from.Add(4 * time.Hour)}
			p := &rollupPlan{lo: sc.from, to: sc.to}
			p.cover(from)
			got += "\n-- with the rollup: is it there, and since when\n" + rollupSinceSQL + "\n"
			got += "\n-- with the rollup: the first canary record\n" + rollupStartSQL(sc, p) + "\n"
			p.startMS, p.lo = from.Add(9*time.Minute+30*time.Second).UnixMilli(), from.Add(9*time.Minute+30*time.Second)
			p.cover(from)
			got += "\n-- with the rollup: aggregates\n" + rollupAggregatesSQL(sc, p, wantedAggregates(policy.Query{Metrics: policy.Query{}.Wanted()})) + "\n"
			got += "\n-- with the rollup: latency bins\n" + rollupBinsSQL(sc, p) + "\n"
		}
		golden := filepath.Join("testdata", name+".sql")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s: the queries differ from %s (run go test -update, then copy it into docs/metrics-sources.md)", name, golden)
		}
		if !strings.Contains(string(docs), "```sql\n"+got+"```") {
			t.Errorf("docs/metrics-sources.md does not quote %s verbatim in a ```sql block", golden)
		}
	}
}
