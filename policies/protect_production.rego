# A model serving production may not be destroyed by a plan: move production elsewhere (or set
# stages.production: none) and apply that first, then remove the model.
package mlctl.protect_production

import rego.v1

deny contains msg if {
	rc := input.resource_changes[_]
	rc.type == "model"
	rc.change.actions[_] == "delete"
	not rc.change.before.stages.production in {null, "none"}
	msg := sprintf("%s serves production and may not be destroyed", [rc.address])
}

deny contains msg if {
	rc := input.resource_changes[_]
	rc.type == "endpoint"
	rc.change.actions[_] == "delete"
	rc.change.before.stage == "production"
	msg := sprintf("%s serves production and may not be destroyed", [rc.address])
}
