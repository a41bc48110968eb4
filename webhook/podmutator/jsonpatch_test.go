package podmutator

import (
	"encoding/json"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
)

func applyPatch(doc []byte, ops []jsonpatch.Operation) ([]byte, error) {
	data, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatchapply.DecodePatch(data)
	if err != nil {
		return nil, err
	}
	return p.Apply(doc)
}
