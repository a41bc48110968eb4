package podmutator

import (
	"encoding/json"
	"fmt"

	nadv1 "github.com/berth-io/berth/api/nad/v1"
)

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func marshalElems(elems []nadv1.NetworkSelectionElement) (string, error) {
	data, err := json.Marshal(elems)
	if err != nil {
		return "", fmt.Errorf("encoding network selection elements: %w", err)
	}
	return string(data), nil
}
