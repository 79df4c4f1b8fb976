// Command kstatus prints what the kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus/status), the rules Flux and
// kpt use to wait for resources, makes of Kubernetes objects.
//
// Input on stdin: one JSON object, a JSON array of objects, or a List (kind ending in "List" with items).
// Output on stdout: a JSON array with one entry per object, in order:
//
//	{"kind": "...", "name": "...", "status": "Current|InProgress|Failed|Terminating|Unknown", "message": "...",
//	 "conditions": [...]}   // the conditions kstatus would add (Reconciling/Stalled), as status.Augment would
//
// An object kstatus cannot judge gets "error" instead of status. Built and cached by hack/kstatus/build.sh.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

type result struct {
	Kind       string      `json:"kind"`
	Name       string      `json:"name"`
	Status     string      `json:"status,omitempty"`
	Message    string      `json:"message"`
	Conditions []condition `json:"conditions"`
	Error      string      `json:"error,omitempty"`
}

// objects decodes stdin as the API machinery does (k8s.io/apimachinery/pkg/util/json): whole numbers become int64,
// which kstatus needs to compare metadata.generation with status.observedGeneration.
func objects(data []byte) ([]map[string]interface{}, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var raw []interface{}
		if err := utiljson.Unmarshal(data, &raw); err != nil {
			return nil, err
		}
		return asObjects(raw, "")
	}
	var one map[string]interface{}
	if err := utiljson.Unmarshal(data, &one); err != nil {
		return nil, err
	}
	if kind, _ := one["kind"].(string); strings.HasSuffix(kind, "List") {
		items, _ := one["items"].([]interface{})
		return asObjects(items, "items")
	}
	return []map[string]interface{}{one}, nil
}

func asObjects(items []interface{}, where string) ([]map[string]interface{}, error) {
	list := make([]map[string]interface{}, 0, len(items))
	for i, item := range items {
		obj, ok := item.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not an object", where, i)
		}
		list = append(list, obj)
	}
	return list, nil
}

func compute(obj map[string]interface{}) result {
	u := &unstructured.Unstructured{Object: obj}
	out := result{Kind: u.GetKind(), Name: u.GetName(), Conditions: []condition{}}
	res, err := status.Compute(u)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Status, out.Message = res.Status.String(), res.Message
	for _, c := range res.Conditions {
		out.Conditions = append(out.Conditions, condition{string(c.Type), string(c.Status), c.Reason, c.Message})
	}
	return out
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	objs, err := objects(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a JSON object, array or List:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(objs))
	for _, obj := range objs {
		results = append(results, compute(obj))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: writing stdout:", err)
		os.Exit(2)
	}
}
