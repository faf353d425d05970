package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// ErrManifest is wrapped by every error LoadManifests returns.
var ErrManifest = errors.New("manifest")

// Manifests are the objects of a manifest file, by kind, in file order.
type Manifests struct {
	Namespaces []corev1.Namespace
	ConfigMaps []corev1.ConfigMap
	DaemonSets []appsv1.DaemonSet
}

// kinds maps apiVersion/kind to a new object of its type, and how to add
// the decoded object to Manifests.
var kinds = map[string]struct {
	new func() any
	add func(m *Manifests, o any)
}{
	"v1/Namespace": {
		func() any { return new(corev1.Namespace) },
		func(m *Manifests, o any) { m.Namespaces = append(m.Namespaces, *o.(*corev1.Namespace)) },
	},
	"v1/ConfigMap": {
		func() any { return new(corev1.ConfigMap) },
		func(m *Manifests, o any) { m.ConfigMaps = append(m.ConfigMaps, *o.(*corev1.ConfigMap)) },
	},
	"apps/v1/DaemonSet": {
		func() any { return new(appsv1.DaemonSet) },
		func(m *Manifests, o any) { m.DaemonSets = append(m.DaemonSets, *o.(*appsv1.DaemonSet)) },
	},
}

// LoadManifests decodes a multi-document YAML file ("---" lines between
// documents) strictly into the Kubernetes API types: a document of a kind
// other than Namespace, ConfigMap or DaemonSet, a field the type does not
// have, a duplicate field, or a field whose case differs from the API's
// (which encoding/json alone would accept and the API server would not) is
// an error wrapping ErrManifest, naming the document.
func LoadManifests(b []byte) (*Manifests, error) {
	m := &Manifests{}
	for i, doc := range splitDocuments(b) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%w: document %d: %w", ErrManifest, i+1, err)
		}
		if tm.APIVersion == "" && tm.Kind == "" && isEmpty(doc) {
			continue
		}
		k, ok := kinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("%w: document %d: unexpected apiVersion %q kind %q", ErrManifest, i+1, tm.APIVersion, tm.Kind)
		}
		// First leniently, to name a field the type lacks by its full path
		// (the strict decoder names the field alone), then strictly.
		loose := k.new()
		if err := yaml.Unmarshal(doc, loose); err != nil {
			return nil, fmt.Errorf("%w: document %d (%s): %w", ErrManifest, i+1, tm.Kind, err)
		}
		if err := sameFields(doc, loose); err != nil {
			return nil, fmt.Errorf("%w: document %d (%s): %w", ErrManifest, i+1, tm.Kind, err)
		}
		obj := k.new()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%w: document %d (%s): %w", ErrManifest, i+1, tm.Kind, err)
		}
		k.add(m, obj)
	}
	return m, nil
}

// splitDocuments splits b at lines that are exactly "---".
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for line := range bytes.Lines(b) {
		if string(bytes.TrimRight(line, " \t\r\n")) == "---" {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

// isEmpty reports whether a document holds nothing but comments and blanks.
func isEmpty(doc []byte) bool {
	var v any
	return yaml.Unmarshal(doc, &v) == nil && v == nil
}

// sameFields checks that every field of doc that is set to something other
// than a zero value comes back, under the same name, when the decoded
// object obj is encoded again: a key encoding/json matched without regard
// to case, or one that decoding lost, is an error.
func sameFields(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	var orig, back any
	if err := json.Unmarshal(js, &orig); err != nil {
		return err
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, &back); err != nil {
		return err
	}
	return compareFields("", orig, back)
}

func compareFields(path string, orig, back any) error {
	switch o := orig.(type) {
	case map[string]any:
		bm, _ := back.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(o)) {
			v := o[k]
			bv, ok := bm[k]
			if !ok {
				if isZero(v) {
					continue
				}
				return fmt.Errorf("field %s%s is not a field of the API type (check its spelling and case)", path, k)
			}
			if err := compareFields(path+k+".", v, bv); err != nil {
				return err
			}
		}
	case []any:
		bl, _ := back.([]any)
		for i, v := range o {
			var bv any
			if i < len(bl) {
				bv = bl[i]
			}
			if err := compareFields(fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i), v, bv); err != nil {
				return err
			}
		}
	}
	return nil
}

// isZero reports whether a decoded JSON value is null, false, 0, "", {} or
// [] (what omitempty leaves out).
func isZero(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice:
		return rv.Len() == 0
	}
	return rv.IsZero()
}
