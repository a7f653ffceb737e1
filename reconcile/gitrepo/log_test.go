package gitrepo

import (
	"context"
	"fmt"
	"reflect"
	"sort"
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

// renameSpec is a spec file as the rename tests write it.
func renameSpec(name string, weight int) string {
	return fmt.Sprintf("name: %s\ntraffic:\n  weight: %d\n", name, weight)
}

// TestLogFollowsRenames reads the log of a spec whose file was renamed or moved, as `git log --follow`
// does: the commits before the rename are the rollout's audit trail and stay in it, each at the path it
// had then. A different rollout that once lived at the same path is not part of it.
func TestLogFollowsRenames(t *testing.T) {
	tests := []struct {
		name string
		path string
		// build makes the history on a checkout whose first commit ("Initial commit") holds
		// rollouts/summarizer.yml at weight 0 and rollouts/chat.yaml.
		build func(c *gittest.Checkout)
		want  []string // subject and path of each commit, newest first
		// anyOrder is set where commits share a committer time (gittest's clock stands still), so
		// that only the set is fixed.
		anyOrder bool
	}{
		{
			name: "rename only",
			path: "rollouts/summarizer.yaml",
			build: func(c *gittest.Checkout) {
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("mv", "rollouts/summarizer.yml", "rollouts/summarizer.yaml")
				c.Commit("rename to .yaml")
				c.Write(map[string]string{"rollouts/summarizer.yaml": renameSpec("summarizer", 25)})
				c.Commit("advance 25%")
			},
			want: []string{"advance 25% rollouts/summarizer.yaml", "rename to .yaml rollouts/summarizer.yaml",
				"start 5% rollouts/summarizer.yml", "Initial commit rollouts/summarizer.yml"},
		},
		{
			name: "rename with an edit",
			path: "rollouts/summarizer.yaml",
			build: func(c *gittest.Checkout) {
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("mv", "rollouts/summarizer.yml", "rollouts/summarizer.yaml")
				c.Write(map[string]string{"rollouts/summarizer.yaml": "# owned by the summaries team\n" + renameSpec("summarizer", 25)})
				c.Commit("rename and advance 25%")
			},
			want: []string{"rename and advance 25% rollouts/summarizer.yaml", "start 5% rollouts/summarizer.yml",
				"Initial commit rollouts/summarizer.yml"},
		},
		{
			name: "moves of several specs at once, each edited",
			path: "rollouts/team/summarizer.yaml",
			build: func(c *gittest.Checkout) {
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("rm", "--quiet", "rollouts/summarizer.yml", "rollouts/chat.yaml")
				c.Write(map[string]string{
					"rollouts/team/summarizer.yaml": renameSpec("summarizer", 10),
					"rollouts/team/chat.yaml":       renameSpec("chat", 10),
				})
				c.Commit("reorganise")
			},
			want: []string{"reorganise rollouts/team/summarizer.yaml", "start 5% rollouts/summarizer.yml",
				"Initial commit rollouts/summarizer.yml"},
		},
		{
			name: "rename on a merged branch",
			path: "rollouts/summarizer.yaml",
			build: func(c *gittest.Checkout) {
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("checkout", "--quiet", "-b", "tidy")
				c.Git("mv", "rollouts/summarizer.yml", "rollouts/summarizer.yaml")
				c.Commit("rename to .yaml")
				c.Git("checkout", "--quiet", "main")
				c.Write(map[string]string{"README.md": "unrelated\n"})
				c.Commit("docs")
				c.Git("merge", "--quiet", "--no-ff", "-m", "Merge tidy", "tidy")
				c.Write(map[string]string{"rollouts/summarizer.yaml": renameSpec("summarizer", 25)})
				c.Commit("advance 25%")
			},
			want: []string{"advance 25% rollouts/summarizer.yaml", "rename to .yaml rollouts/summarizer.yaml",
				"start 5% rollouts/summarizer.yml", "Initial commit rollouts/summarizer.yml"},
		},
		{
			name: "rename on a branch while the old file changes on main",
			path: "rollouts/summarizer.yaml",
			build: func(c *gittest.Checkout) {
				c.Git("checkout", "--quiet", "-b", "tidy")
				c.Git("mv", "rollouts/summarizer.yml", "rollouts/summarizer.yaml")
				c.Commit("rename to .yaml")
				c.Git("checkout", "--quiet", "main")
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("merge", "--quiet", "--no-ff", "-m", "Merge tidy", "tidy")
			},
			want: []string{"Initial commit rollouts/summarizer.yml", "Merge tidy rollouts/summarizer.yaml",
				"rename to .yaml rollouts/summarizer.yaml", "start 5% rollouts/summarizer.yml"},
			anyOrder: true,
		},
		{
			name: "two renames in a row",
			path: "specs/summarizer.yaml",
			build: func(c *gittest.Checkout) {
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("mv", "rollouts/summarizer.yml", "rollouts/summarizer.yaml")
				c.Commit("rename to .yaml")
				c.Write(map[string]string{"rollouts/summarizer.yaml": renameSpec("summarizer", 25)})
				c.Commit("advance 25%")
				c.Git("mv", "rollouts", "specs")
				c.Commit("move to specs/")
			},
			want: []string{"move to specs/ specs/summarizer.yaml", "advance 25% rollouts/summarizer.yaml",
				"rename to .yaml rollouts/summarizer.yaml", "start 5% rollouts/summarizer.yml",
				"Initial commit rollouts/summarizer.yml"},
		},
		{
			name: "an unrelated rollout later created at the same path",
			path: "rollouts/summarizer.yml",
			build: func(c *gittest.Checkout) {
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("rm", "--quiet", "rollouts/summarizer.yml")
				c.Commit("retire summarizer")
				c.Write(map[string]string{"README.md": "unrelated\n"})
				c.Commit("docs")
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer-v2", 5)})
				c.Commit("new summarizer-v2")
			},
			want: []string{"new summarizer-v2 rollouts/summarizer.yml"},
		},
		{
			name: "an unrelated rollout created as another is deleted",
			path: "rollouts/summarizer-v2.yaml",
			build: func(c *gittest.Checkout) {
				c.Git("rm", "--quiet", "rollouts/summarizer.yml")
				c.Write(map[string]string{"rollouts/summarizer-v2.yaml": renameSpec("summarizer-v2", 0)})
				c.Commit("replace summarizer")
			},
			want: []string{"replace summarizer rollouts/summarizer-v2.yaml"},
		},
		{
			name: "a spec deleted by mistake and restored",
			path: "rollouts/summarizer.yml",
			build: func(c *gittest.Checkout) {
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("start 5%")
				c.Git("rm", "--quiet", "rollouts/summarizer.yml")
				c.Commit("oops")
				c.Write(map[string]string{"rollouts/summarizer.yml": renameSpec("summarizer", 5)})
				c.Commit("restore")
			},
			want: []string{"restore rollouts/summarizer.yml", "oops rollouts/summarizer.yml",
				"start 5% rollouts/summarizer.yml", "Initial commit rollouts/summarizer.yml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bare := gittest.NewBare(t, map[string]string{
				"README.md":               "hello\n",
				"rollouts/summarizer.yml": renameSpec("summarizer", 0),
				"rollouts/chat.yaml":      renameSpec("chat", 0),
			})
			c := gittest.Clone(t, bare)
			tt.build(c)
			c.Push("main")
			commits, err := openRemote(t, bare).Log(context.Background(), tt.path, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, commit := range commits {
				got = append(got, commit.Subject+" "+commit.Path)
			}
			if tt.anyOrder {
				sort.Strings(got)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("log of %s:\n got  %q\n want %q", tt.path, got, tt.want)
			}
		})
	}
}
