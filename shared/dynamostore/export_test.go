package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keywaygw/keyway/shared/keys"
)

// PlantKey writes k as CreateKey does (key, alias and key id items) but without
// the checks that its user and team exist (keystest.PlantKey). Test-only.
func PlantKey(ctx context.Context, s keys.Store, k *keys.Key) error {
	st := s.(*Store)
	ops, err := st.createKeyOps(k)
	if err != nil {
		return err
	}
	if err := st.write(ctx, ops); err != nil {
		return err
	}
	k.Version = 1
	return nil
}

// HideFromIndexes rewrites the key item under token without its gsi1 and
// gsi2 attributes, so that index queries miss it as they do for a moment
// after a write (the indexes are eventually consistent; moto's are not).
// Test-only.
func HideFromIndexes(ctx context.Context, s keys.Store, token string) error {
	st := s.(*Store)
	it, err := st.getItem(ctx, keyPK(token))
	if err != nil || it == nil {
		return fmt.Errorf("key item %s: %v (found %v)", token, err, it != nil)
	}
	for _, a := range []string{attrGSI1PK, attrGSI1SK, attrGSI2PK, attrGSI2SK} {
		delete(it, a)
	}
	_, err = st.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: it})
	return err
}
