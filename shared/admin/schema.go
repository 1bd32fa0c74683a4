package admin

// The request schemas, one per route, with LiteLLM's field names
// (litellm/proxy/_types.py: GenerateKeyRequest, UpdateKeyRequest,
// RegenerateKeyRequest, NewUserRequest, UpdateUserRequest, NewTeamRequest,
// UpdateTeamRequest, KeyRequest, DeleteUserRequest, DeleteTeamRequest,
// BlockKeyRequest).

func extra(k kind) field { return field{kind: k, extra: true} }

// limitFields are the budget and rate fields shared by keys, users and
// teams (keys.Limits).
var limitFields = schema{
	"max_budget":            {kind: kNumber},
	"soft_budget":           {kind: kNumber},
	"budget_duration":       {kind: kDuration},
	"tpm_limit":             {kind: kInt},
	"rpm_limit":             {kind: kInt},
	"max_parallel_requests": {kind: kInt},
}

// keyFields are GenerateKeyRequest's fields other than key itself.
var keyFields = merge(limitFields, schema{
	"key_alias":                  {kind: kAlias},
	"duration":                   {kind: kDuration},
	"models":                     {kind: kStrings},
	"user_id":                    {kind: kID},
	"team_id":                    {kind: kID},
	"metadata":                   {kind: kObject},
	"allowed_routes":             {kind: kRoutes},
	"allowed_passthrough_routes": {kind: kRoutes},
	"key_type":                   {kind: kKeyType},
	"blocked":                    {kind: kBool},
	"spend":                      {kind: kNumber},

	// Stored and returned, not enforced by Keyway.
	"organization_id":        extra(kID),
	"project_id":             extra(kID),
	"tags":                   extra(kStrings),
	"guardrails":             extra(kStrings),
	"aliases":                extra(kObject),
	"permissions":            extra(kObject),
	"model_max_budget":       extra(kObject),
	"model_rpm_limit":        extra(kObject),
	"model_tpm_limit":        extra(kObject),
	"auto_rotate":            extra(kBool),
	"rotation_interval":      extra(kDuration),
	"config":                 extra(kObject),
	"allowed_cache_controls": extra(kArray),
	"enforced_params":        extra(kStrings),
	"object_permission":      extra(kObject),
	"prompts":                extra(kStrings),
	"send_invite_email":      extra(kBool),
})

var (
	keyGenerateSchema = merge(keyFields, schema{
		"key": {kind: kSecret},
		// Older LiteLLM Python clients (KeysManagementClient.generate)
		// send api_key; LiteLLM ignores it and so does Keyway. It is never
		// stored, echoed or logged: it may hold the caller's own key.
		"api_key":   {kind: kIgnored},
		"budget_id": extra(kID),
	})

	keyUpdateSchema = merge(keyFields, schema{
		"key":                  {kind: kString}, // which key: its secret or token
		"temp_budget_increase": extra(kNumber),
		"temp_budget_expiry":   extra(kString),
	})

	keyRegenerateSchema = merge(keyUpdateSchema, schema{
		"new_key":      {kind: kSecret},
		"grace_period": {kind: kDuration},
		"new_master_key": {kind: kUnsupported,
			why: "the master key is general_settings.master_key in the config; change it there"},
	})

	keyDeleteSchema = schema{"keys": {kind: kStrings}, "key_aliases": {kind: kIDs}}

	keyBlockSchema = schema{"key": {kind: kString}}

	keyInfoQuery = schema{"key": {kind: kString}}

	keyListQuery = schema{
		"page":               {kind: kInt},
		"size":               {kind: kInt},
		"user_id":            {kind: kID},
		"team_id":            {kind: kID},
		"organization_id":    {kind: kID},
		"key_alias":          {kind: kID},
		"key_hash":           {kind: kString},
		"return_full_object": {kind: kBool},
		"include_team_keys":  {kind: kBool},
	}
)

// userFields are the user fields of NewUserRequest and UpdateUserRequest.
var userFields = merge(limitFields, schema{
	"user_id":    {kind: kID},
	"user_email": {kind: kString},
	"user_alias": {kind: kString},
	"user_role":  {kind: kRole},
	"teams":      {kind: kIDs},
	"models":     {kind: kStrings},
	"metadata":   {kind: kObject},
	"blocked":    {kind: kBool},
	"spend":      {kind: kNumber},

	"organizations":          extra(kStrings),
	"send_invite_email":      extra(kBool),
	"aliases":                extra(kObject),
	"config":                 extra(kObject),
	"allowed_cache_controls": extra(kArray),
	"guardrails":             extra(kStrings),
	"permissions":            extra(kObject),
	"model_max_budget":       extra(kObject),
	"model_rpm_limit":        extra(kObject),
	"model_tpm_limit":        extra(kObject),
	"object_permission":      extra(kObject),
	"prompts":                extra(kStrings),
	"sso_user_id":            extra(kString),
})

var (
	// userNewSchema adds the fields of the key /user/new creates.
	userNewSchema = merge(userFields, schema{
		"auto_create_key": {kind: kBool},
		"team_id":         {kind: kID},
		"duration":        {kind: kDuration},
		"key_alias":       {kind: kAlias},
	})

	userUpdateSchema = userFields

	userDeleteSchema = schema{"user_ids": {kind: kIDs}}

	userInfoQuery = schema{"user_id": {kind: kID}}

	userListQuery = schema{
		"page":      {kind: kInt},
		"page_size": {kind: kInt},
		"role":      {kind: kRole},
		"user_ids":  {kind: kIDs},
	}
)

// teamFields are the fields of NewTeamRequest and UpdateTeamRequest.
var teamFields = merge(limitFields, schema{
	"team_id":                    {kind: kID},
	"team_alias":                 {kind: kString},
	"models":                     {kind: kStrings},
	"metadata":                   {kind: kObject},
	"allowed_passthrough_routes": {kind: kRoutes},
	"blocked":                    {kind: kBool},

	"team_member_budget":       extra(kNumber),
	"team_member_rpm_limit":    extra(kInt),
	"team_member_tpm_limit":    extra(kInt),
	"team_member_key_duration": extra(kDuration),
	"team_member_permissions":  extra(kStrings),
	"organization_id":          extra(kID),
	"tags":                     extra(kStrings),
	"guardrails":               extra(kStrings),
	"model_aliases":            extra(kObject),
	"model_rpm_limit":          extra(kObject),
	"model_tpm_limit":          extra(kObject),
	"object_permission":        extra(kObject),
	"prompts":                  extra(kStrings),
	"admins":                   extra(kArray),
	"members":                  extra(kArray),
})

var (
	teamNewSchema = merge(teamFields, schema{"members_with_roles": extra(kMembers)})

	teamUpdateSchema = teamFields

	teamDeleteSchema = schema{"team_ids": {kind: kIDs}}

	teamInfoQuery = schema{"team_id": {kind: kID}}

	teamListQuery = schema{"user_id": {kind: kID}, "organization_id": {kind: kID}}
)
