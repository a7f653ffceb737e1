package rollouts

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Change is what the controller changes in a spec file. Nil and false fields leave the file as it is.
type Change struct {
	Weight *int
	Shadow *int
	// Status replaces the whole status block.
	Status *Status
	// ClearStatus removes the status block.
	ClearStatus bool
	// Promote makes the canary the new stable: stable moves to previous, canary replaces stable, and the
	// canary block is removed.
	Promote bool
	// DropPrevious removes the previous block.
	DropPrevious bool
}

// Edit applies ch to the bytes of a spec file and returns the new bytes.
//
// TODO(issue 2): this first version round-trips through yaml.v3 nodes; it keeps comments and key order
// but not indentation or quoting. It is replaced by a byte-level minimal-diff editor.
func Edit(src []byte, ch Change) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("edit spec: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("edit spec: not a mapping")
	}
	root := doc.Content[0]
	if ch.Weight != nil || ch.Shadow != nil {
		traffic := mapValue(root, "traffic")
		if traffic == nil {
			traffic = &yaml.Node{Kind: yaml.MappingNode}
			setMapValue(root, "traffic", traffic)
		}
		if ch.Weight != nil {
			setMapValue(traffic, "weight", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(*ch.Weight)})
		}
		if ch.Shadow != nil {
			setMapValue(traffic, "shadow", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(*ch.Shadow)})
		}
	}
	if ch.Promote {
		stable, canary := mapValue(root, "stable"), mapValue(root, "canary")
		if canary == nil {
			return nil, fmt.Errorf("edit spec: promote: no canary")
		}
		if stable != nil {
			setMapValue(root, "previous", stable)
		}
		setMapValue(root, "stable", canary)
		deleteMapKey(root, "canary")
	}
	if ch.DropPrevious {
		deleteMapKey(root, "previous")
	}
	if ch.ClearStatus {
		deleteMapKey(root, "status")
	}
	if ch.Status != nil {
		var n yaml.Node
		if err := n.Encode(ch.Status); err != nil {
			return nil, fmt.Errorf("edit spec: %w", err)
		}
		setMapValue(root, "status", &n)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("edit spec: %w", err)
	}
	return out.Bytes(), nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func deleteMapKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
