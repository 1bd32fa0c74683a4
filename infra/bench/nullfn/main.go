// Command nullfn is the cold-start baseline for make bench: the smallest
// aws-lambda-go function that answers a REST API event, built with the same
// flags as Keyway's bootstrap. Under the same Runtime Interface Emulator,
// Keyway's first-invoke time minus nullfn's is the work Keyway itself adds
// to a cold start (binary load, package init, config, store, handler).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(ctx context.Context, e events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{
			StatusCode: 200,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       `{"status":"healthy"}`,
		}, nil
	})
}
