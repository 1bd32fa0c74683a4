package dynamostore

import (
	"context"

	"github.com/keywaygw/keyway/shared/keys"
)

// PlantKey writes k as CreateKey does (key item and alias item) but without
// the checks that its user and team exist (keystest.PlantKey). Test-only.
func PlantKey(ctx context.Context, s keys.Store, k *keys.Key) error {
	st := s.(*Store)
	it, err := encodeKey(k, 1, nil)
	if err != nil {
		return err
	}
	ops := []op{st.put(it, condAbsent, nil, nil, keys.ErrExists)}
	if aliasOf(k) != "" {
		ops = append(ops, st.put(encodeAlias(k.KeyAlias, k.Token), condAbsent, nil, nil, keys.ErrExists))
	}
	if k.RotatedTo == "" {
		ops = append(ops, st.put(encodeKeyID(k), condAbsent, nil, nil, keys.ErrExists))
	}
	if err := st.write(ctx, ops); err != nil {
		return err
	}
	k.Version = 1
	return nil
}
