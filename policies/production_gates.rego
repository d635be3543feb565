# A model that serves production must guard against regressions: a plan that pins or moves
# its production stage, or changes the model, is denied unless its gates hold max_regression
# (the candidate may not fall more than this below production's primary metric).
package mlctl.production_gates

import rego.v1

production_models contains name if {
	rc := input.resource_changes[_]
	rc.type in {"model", "model_version", "stage"}
	name := split(rc.address, ".")[1]
	model := input.mlctl.models[name]
	not model.stages.production in {null, "none"}
}

deny contains msg if {
	name := production_models[_]
	not input.mlctl.models[name].gates.max_regression
	msg := sprintf("model.%s serves production but has no max_regression gate: add gates.max_regression", [name])
}
