// Package crosscheck holds no code: its tests feed the same synthetic traffic through every metrics
// source (Prometheus and PostgreSQL, started for real, and the JSONL file) and check that the judge
// reaches the same decision from each. They also time one tick's Stats call against each source.
//
// It belongs to the policy room, beside the sources it checks against one another.
package crosscheck
