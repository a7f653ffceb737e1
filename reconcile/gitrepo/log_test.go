package gitrepo

import (
	"context"
	"reflect"
	"testing"

	"github.com/rollout-dev/rollout/internal/gittest"
	"github.com/rollout-dev/rollout/reconcile"
)

func TestParseTrailers(t *testing.T) {
	tests := []struct {
		message string
		want    map[string]string
	}{
		{"subject only\n", nil},
		{"subject\n\nRollout: chat\nRollout-Decision: rollback\n", map[string]string{"Rollout": "chat", "Rollout-Decision": "rollback"}},
		{"subject\n\nbody text\n\nRollout: chat\n", map[string]string{"Rollout": "chat"}},
		{"subject\n\nnot a: trailer block\nbecause this line has none\n", nil},
		{"subject\r\n\r\nRollout: x\r\n", map[string]string{"Rollout": "x"}},
	}
	for _, tt := range tests {
		if got := ParseTrailers(tt.message); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseTrailers(%q) = %v, want %v", tt.message, got, tt.want)
		}
	}
}

func TestLogFollowsOneFileThroughMerges(t *testing.T) {
	bare := gittest.NewBare(t, seedFiles)
	r := openRemote(t, bare)
	ctx := context.Background()
	snap, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The bot proposes 5% → 25% on its branch; a human merges it with a merge commit.
	bot, err := r.Push(ctx, reconcile.PushRequest{Branch: "rollout/summarizer", Parent: snap.Head, When: when,
		Message: "rollout(summarizer): 5% → 25%\n\nRollout: summarizer\nRollout-Decision: advance\n",
		Files:   map[string][]byte{"rollouts/summarizer.yaml": []byte("name: summarizer\ntraffic:\n  weight: 25\n")}})
	if err != nil {
		t.Fatal(err)
	}
	human := gittest.Clone(t, bare)
	human.Write(map[string]string{"README.md": "unrelated\n"})
	human.Commit("docs")
	human.Git("merge", "--quiet", "--no-ff", "-m", "Merge rollout/summarizer", "origin/rollout/summarizer")
	human.Write(map[string]string{"rollouts/summarizer.yaml": "name: summarizer\ntraffic:\n  weight: 0\n"})
	manual := human.Commit("stop it")
	human.Push()

	commits, err := r.Log(ctx, "rollouts/summarizer.yaml", 0)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, c := range commits {
		hashes = append(hashes, c.Hash)
	}
	initial := gittest.Git(t, bare, "rev-list", "--max-parents=0", "main")
	if want := []string{manual, bot, initial}; !reflect.DeepEqual(hashes, want) {
		t.Fatalf("log = %v, want %v", hashes, want)
	}
	if c := commits[1]; !c.Bot || c.Trailers["Rollout-Decision"] != "advance" || c.Subject != "rollout(summarizer): 5% → 25%" || string(c.Content) != "name: summarizer\ntraffic:\n  weight: 25\n" {
		t.Fatalf("bot commit = %+v", c)
	}
	if c := commits[0]; c.Bot || c.AuthorName != gittest.HumanName {
		t.Fatalf("human commit = %+v", c)
	}
	if limited, err := r.Log(ctx, "rollouts/summarizer.yaml", 1); err != nil || len(limited) != 1 {
		t.Fatalf("Log n=1: %d commits, %v", len(limited), err)
	}
}
