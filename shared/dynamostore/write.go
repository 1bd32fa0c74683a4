package dynamostore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keywaygw/keyway/shared/keys"
)

// maxTxItems is DynamoDB's limit on actions in one TransactWriteItems call.
const maxTxItems = 100

// op is one conditional write. onFail is what its condition failing means
// (keys.ErrExists, keys.ErrNotFound, or errConflict: re-read and retry).
type op struct {
	w      types.TransactWriteItem
	onFail error
}

// errConflict is a failed condition that means "the item changed since it
// was read": the caller re-reads and tries again, a bounded number of times.
// It wraps keys.ErrConflict, for when the retries run out.
var errConflict = fmt.Errorf("concurrent update: %w", keys.ErrConflict)

// maxConflictRetries bounds the read-modify-write loops.
const maxConflictRetries = 8

func (st *Store) put(it item, cond string, names map[string]string, vals item, onFail error) op {
	return op{w: types.TransactWriteItem{Put: &types.Put{
		TableName:                 aws.String(st.table),
		Item:                      it,
		ConditionExpression:       optString(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	}}, onFail: onFail}
}

func (st *Store) del(key item, cond string, names map[string]string, vals item, onFail error) op {
	return op{w: types.TransactWriteItem{Delete: &types.Delete{
		TableName:                 aws.String(st.table),
		Key:                       key,
		ConditionExpression:       optString(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	}}, onFail: onFail}
}

func (st *Store) update(key item, expr, cond string, names map[string]string, vals item, onFail error) op {
	return op{w: types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(st.table),
		Key:                       key,
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       optString(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	}}, onFail: onFail}
}

// check is a condition on an item the transaction does not write (a
// ConditionCheck): the transaction fails unless cond holds.
func (st *Store) check(key item, cond string, onFail error) op {
	return op{w: types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:           aws.String(st.table),
		Key:                 key,
		ConditionExpression: aws.String(cond),
	}}, onFail: onFail}
}

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// write applies ops atomically: one plain conditional write when there is a
// single op (half the cost of a transaction), otherwise TransactWriteItems.
// A failed condition returns the failing op's onFail (the first one, in op
// order); other errors are returned wrapped.
func (st *Store) write(ctx context.Context, ops []op) error {
	switch {
	case len(ops) == 0:
		return nil
	case len(ops) > maxTxItems:
		return fmt.Errorf("%d writes exceed one transaction (%d)", len(ops), maxTxItems)
	case len(ops) == 1:
		return st.writeOne(ctx, ops[0])
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: make([]types.TransactWriteItem, len(ops))}
	for i, o := range ops {
		in.TransactItems[i] = o.w
	}
	_, err := st.client.TransactWriteItems(ctx, in)
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for i, r := range tc.CancellationReasons {
			if i < len(ops) && aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return ops[i].onFail
			}
		}
		for _, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "TransactionConflict" {
				// Another transaction touched one of the items: same as a
				// lost optimistic lock.
				return errConflict
			}
		}
	}
	if err != nil {
		return fmt.Errorf("transact write items: %w", err)
	}
	return nil
}

func (st *Store) writeOne(ctx context.Context, o op) error {
	var err error
	switch w := o.w; {
	case w.Put != nil:
		it := w.Put.Item
		var wid string
		if o.onFail == keys.ErrExists {
			// Mark this write, so a retry can recognise it (see below).
			wid = rand.Text()
			it = maps.Clone(it)
			it[attrWriteID] = s(wid)
		}
		_, err = st.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: w.Put.TableName, Item: it, ConditionExpression: w.Put.ConditionExpression,
			ExpressionAttributeNames: w.Put.ExpressionAttributeNames, ExpressionAttributeValues: w.Put.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		// A create whose first attempt was applied but whose answer was
		// lost (timeout, 5xx) fails its condition on the SDK's retry, with
		// our own write in place: that is a success, not ErrExists.
		// TransactWriteItems needs no such check: the SDK sends one
		// ClientRequestToken for all attempts, and DynamoDB applies a
		// transaction once per token.
		var ccf *types.ConditionalCheckFailedException
		if wid != "" && errors.As(err, &ccf) && attrString(ccf.Item, attrWriteID) == wid {
			return nil
		}
	case w.Delete != nil:
		_, err = st.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: w.Delete.TableName, Key: w.Delete.Key, ConditionExpression: w.Delete.ConditionExpression,
			ExpressionAttributeNames: w.Delete.ExpressionAttributeNames, ExpressionAttributeValues: w.Delete.ExpressionAttributeValues,
		})
	case w.Update != nil:
		_, err = st.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: w.Update.TableName, Key: w.Update.Key, UpdateExpression: w.Update.UpdateExpression,
			ConditionExpression:      w.Update.ConditionExpression,
			ExpressionAttributeNames: w.Update.ExpressionAttributeNames, ExpressionAttributeValues: w.Update.ExpressionAttributeValues,
		})
	case w.ConditionCheck != nil:
		// Only meaningful beside a write, in one transaction.
		return fmt.Errorf("a condition check without a write")
	default:
		return fmt.Errorf("empty write")
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return o.onFail
	}
	if err != nil {
		return fmt.Errorf("write item: %w", err)
	}
	return nil
}

func attrString(it item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// getItem reads one item with a strongly consistent read; nil if absent.
func (st *Store) getItem(ctx context.Context, key item) (item, error) {
	out, err := st.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(st.table),
		Key:            key,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get item: %w", err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// query runs a Query on index over every page. Index reads are eventually
// consistent (DynamoDB offers nothing else on a global secondary index).
func (st *Store) query(ctx context.Context, in *dynamodb.QueryInput) ([]item, error) {
	in.TableName = aws.String(st.table)
	var items []item
	p := dynamodb.NewQueryPaginator(st.client, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", aws.ToString(in.IndexName), err)
		}
		items = append(items, out.Items...)
	}
	return items, nil
}
