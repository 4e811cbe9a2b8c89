{{/*
Chart name.
*/}}
{{- define "tensafe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name (63 characters: some Kubernetes name fields are limited to that).
*/}}
{{- define "tensafe.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "tensafe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Version label: the image tag, else the appVersion.
*/}}
{{- define "tensafe.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" | trimSuffix "." | trimSuffix "_" }}
{{- end }}

{{/*
Labels shared by every object of the release, without name and component.
*/}}
{{- define "tensafe.commonLabels" -}}
helm.sh/chart: {{ include "tensafe.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "tensafe.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tensafe
{{- end }}

{{/*
Recommended labels of the application objects.
*/}}
{{- define "tensafe.labels" -}}
{{ include "tensafe.commonLabels" . }}
app.kubernetes.io/name: {{ include "tensafe.name" . }}
app.kubernetes.io/component: inference
{{- end }}

{{/*
Selector labels: name and instance only (immutable in a Deployment selector).
*/}}
{{- define "tensafe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tensafe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the helm test pod. Its name differs from the app's on purpose: a pod carrying the app's
selector labels would be adopted by the ReplicaSet and receive Service traffic.
*/}}
{{- define "tensafe.testName" -}}
{{- printf "%s-test" (include "tensafe.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tensafe.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tensafe.testName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tensafe.testLabels" -}}
{{ include "tensafe.commonLabels" . }}
app.kubernetes.io/name: {{ include "tensafe.testName" . }}
app.kubernetes.io/component: test
{{- end }}

{{/*
Service account name.
*/}}
{{- define "tensafe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tensafe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret with TS_SECRET_KEY, TS_KEY_MASTER, DATABASE_URL, REDIS_URL.
*/}}
{{- define "tensafe.secretName" -}}
{{- default (printf "%s-secrets" (include "tensafe.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/*
Image reference: repository@digest when a digest is set, else repository:tag (tag defaults to appVersion).
Usage: include "tensafe.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion)
*/}}
{{- define "tensafe.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (toString (default .default .image.tag)) }}
{{- end }}
{{- end }}

{{/*
Does the pod mount a service account token? Only when the Vault agent needs it (or when asked).
*/}}
{{- define "tensafe.automountToken" -}}
{{- if or .Values.vault.agentInject.enabled .Values.serviceAccount.automountServiceAccountToken }}true{{ else }}false{{ end }}
{{- end }}

{{/*
Validation the JSON schema cannot express. Included by every template that renders an object,
so `helm template -s` of one file still fails on bad values.
*/}}
{{- define "tensafe.validateValues" -}}
{{- $as := .Values.autoscaling }}
{{- $legacyHpa := and (hasKey $as "enabled") $as.enabled }}
{{- $legacyKeda := false }}
{{- if and (hasKey .Values "keda") (kindIs "map" .Values.keda) }}
{{- $legacyKeda = and (hasKey .Values.keda "enabled") .Values.keda.enabled }}
{{- end }}
{{- if and (hasKey $as.keda "enabled") $as.keda.enabled }}
{{- $legacyKeda = true }}
{{- end }}
{{- if and $legacyHpa $legacyKeda }}
{{- fail "HPA and KEDA cannot both manage the Deployment: set autoscaling.mode to hpa or keda (the legacy keys autoscaling.enabled and keda.enabled are not used by this chart)" }}
{{- end }}
{{- if $legacyHpa }}
{{- fail "autoscaling.enabled is a legacy key of the guide: set autoscaling.mode to hpa (or keda) instead" }}
{{- end }}
{{- if $legacyKeda }}
{{- fail "keda.enabled is a legacy key of the guide: set autoscaling.mode to keda and tune autoscaling.keda.* instead" }}
{{- end }}
{{- if and (hasKey .Values "keda") (kindIs "map" .Values.keda) }}
{{- range $k, $v := .Values.keda }}
{{- if ne $k "enabled" }}
{{- fail (printf "keda.%s is a legacy key of the guide: KEDA settings live under autoscaling.keda (triggers: autoscaling.keda.extraTriggers)" $k) }}
{{- end }}
{{- end }}
{{- end }}
{{- if lt (int $as.maxReplicas) (int $as.minReplicas) }}
{{- fail (printf "autoscaling.maxReplicas (%d) must be greater than or equal to autoscaling.minReplicas (%d)" (int $as.maxReplicas) (int $as.minReplicas)) }}
{{- end }}
{{- if eq $as.mode "hpa" }}
{{- if not (or $as.hpa.targetCPUUtilizationPercentage $as.hpa.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling.mode is hpa but neither autoscaling.hpa.targetCPUUtilizationPercentage nor targetMemoryUtilizationPercentage is set" }}
{{- end }}
{{- end }}
{{- if eq $as.mode "keda" }}
{{- $k := $as.keda }}
{{- $gpuTrigger := and $k.gpuUtilizationThreshold (gt (int .Values.gpu.count) 0) }}
{{- if not (or $k.latencyP95ThresholdMs $k.queueDepthThreshold $gpuTrigger $k.extraTriggers) }}
{{- fail "autoscaling.mode is keda but no trigger is left: set a threshold in autoscaling.keda or add autoscaling.keda.extraTriggers" }}
{{- end }}
{{- end }}
{{- range $section := list "requests" "limits" }}
{{- if hasKey (index $.Values.resources $section) $.Values.gpu.resourceName }}
{{- fail (printf "resources.%s.%s is set: GPUs are requested with gpu.count (rendered into both requests and limits)" $section $.Values.gpu.resourceName) }}
{{- end }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (kindIs "invalid" $pdb.maxUnavailable) (or (kindIs "invalid" $pdb.minAvailable) (eq (toString $pdb.minAvailable) "")) }}
{{- fail "podDisruptionBudget.enabled is true but neither maxUnavailable nor minAvailable is set" }}
{{- end }}
{{- $floor := int (include "tensafe.replicaFloor" .) }}
{{- if and $pdb.enabled (ge $floor 2) (not (kindIs "string" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.minAvailable)) (ge (int $pdb.minAvailable) $floor) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the replica count (%d): otherwise no pod may ever be evicted and node drains hang" (int $pdb.minAvailable) $floor) }}
{{- end }}
{{- $secretLike := "(?i)(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_KEY|KEY_MASTER|^DATABASE_URL$|^REDIS_URL$)" }}
{{- range $k, $v := .Values.config }}
{{- if regexMatch $secretLike $k }}
{{- fail (printf "config.%s looks like a secret: the ConfigMap is not secret, put it in the Secret %s" $k (include "tensafe.secretName" $)) }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if and (hasKey . "value") (regexMatch $secretLike (toString .name)) }}
{{- fail (printf "extraEnv %s looks like a secret with a literal value: use valueFrom.secretKeyRef" .name) }}
{{- end }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled is true but ingress.hosts is empty" }}
{{- end }}
{{- if and .Values.secrets.externalSecret.enabled (not .Values.secrets.externalSecret.data) }}
{{- fail "secrets.externalSecret.enabled is true but secrets.externalSecret.data is empty" }}
{{- end }}
{{- end }}

{{/*
Probe timing fields.
*/}}
{{- define "tensafe.probeTiming" -}}
{{- $t := dict "periodSeconds" .periodSeconds "timeoutSeconds" .timeoutSeconds "failureThreshold" .failureThreshold }}
{{- if .initialDelaySeconds }}{{ $_ := set $t "initialDelaySeconds" .initialDelaySeconds }}{{ end }}
{{- if .successThreshold }}{{ $_ := set $t "successThreshold" .successThreshold }}{{ end }}
{{- toYaml $t }}
{{- end }}

{{/*
One NetworkPolicy peer from {namespaceSelector, podSelector}. A null namespaceSelector means the
release namespace; {} means every namespace.
*/}}
{{- define "tensafe.netpolPeer" -}}
{{- $p := dict "podSelector" (dict) }}
{{- if .podSelector }}{{ $_ := set $p "podSelector" (dict "matchLabels" .podSelector) }}{{ end }}
{{- if not (kindIs "invalid" .namespaceSelector) }}
{{- $_ := set $p "namespaceSelector" (dict) }}
{{- if .namespaceSelector }}{{ $_ := set $p "namespaceSelector" (dict "matchLabels" .namespaceSelector) }}{{ end }}
{{- end }}
{{- toYaml (list $p) }}
{{- end }}

{{/*
The fewest pods the release runs: replicaCount, or autoscaling.minReplicas when an autoscaler owns the count.
The PodDisruptionBudget follows it.
*/}}
{{- define "tensafe.replicaFloor" -}}
{{- if eq .Values.autoscaling.mode "none" }}{{ int .Values.replicaCount }}{{ else }}{{ int .Values.autoscaling.minReplicas }}{{ end }}
{{- end }}
