# In environments/prod, a pull request changes only the models of the teams it is labeled
# with: a model tagged `team: X` may change only when the pull request carries the label X.
# Plans made outside a pull request (no --label, no MLCTL_PR_LABELS) are not restricted here.
package mlctl.team_labels

import rego.v1

changed_models contains name if {
	rc := input.resource_changes[_]
	rc.type in {"model", "model_version", "stage"}
	name := split(rc.address, ".")[1]
}

team(name) := t if {
	t := input.mlctl.models[name].tags.team
} else := "(none)"

deny contains msg if {
	input.mlctl.environment == "prod"
	labels := input.mlctl.pull_request.labels
	name := changed_models[_]
	t := team(name)
	not t in labels
	msg := sprintf("model.%s (team: %s) changes in prod, but the pull request is not labeled %s", [name, t, t])
}

warn contains msg if {
	input.mlctl.environment == "prod"
	name := changed_models[_]
	not input.mlctl.models[name].tags.team
	msg := sprintf("model.%s has no team tag: only a pull request labeled (none) may change it in prod", [name])
}
