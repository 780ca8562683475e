{{/* Names, labels, images and the pieces every pod repeats. */}}

{{- define "gridgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gridgate.component" -}}
{{- printf "%s-%s" (include "gridgate.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gridgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gridgate
{{- end -}}

{{- define "gridgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gridgate.componentLabels" -}}
{{ include "gridgate.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gridgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gridgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image: dict root, component, values (the component's block) */}}
{{- define "gridgate.image" -}}
{{- $img := .values.image | default dict -}}
{{- $repository := $img.repository | default (printf "%s%s" .root.Values.image.prefix .component) -}}
{{- $tag := $img.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}

{{- define "gridgate.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.existingSecret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/*
Extra variables of one service: its values.<service>.env map, sorted. dict env, component,
reserved: the names the chart sets itself from its own values, refused here.
*/}}
{{- define "gridgate.extraEnv" -}}
{{- $reserved := .reserved | default list }}
{{- range $name, $value := .env }}
{{- if has $name $reserved }}
{{- fail (printf "%s.env.%s: the chart sets it itself, from secretKeys, dirac.*, auth.provider/auth.dirac or gateway.facilities (values.yaml)" $.component $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "gridgate.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "gridgate.containerSecurityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end -}}

{{/* Pod-level scheduling and pull secrets: dict root, values */}}
{{- define "gridgate.podScheduling" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "gridgate.facilityVolume" -}}
- name: facility
{{- if .Values.storage.facility.enabled }}
  persistentVolumeClaim:
    claimName: {{ .Values.storage.facility.existingClaim | default (printf "%s-facility" (include "gridgate.fullname" .)) }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "gridgate.resultsVolume" -}}
- name: results
{{- if .Values.storage.results.enabled }}
  persistentVolumeClaim:
    claimName: {{ .Values.storage.results.existingClaim | default (printf "%s-results" (include "gridgate.fullname" .)) }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{/* Worker container: dict root, component (submitter|monitor|results), values */}}
{{- define "gridgate.workerContainer" -}}
{{- $prefix := printf "GRIDGATE_%s_" (upper .component) -}}
- name: {{ .component }}
  image: {{ include "gridgate.image" . }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  envFrom:
    - configMapRef:
        name: {{ include "gridgate.fullname" .root }}
  env:
    {{- include "gridgate.secretEnv" (dict "root" .root "name" (printf "%sBROKER_URL" $prefix) "key" .root.Values.secretKeys.brokerUrl) | nindent 4 }}
    {{- /* monitor: the gateway's /internal; submitter and results: auth's (owners' proxies) */}}
    {{- include "gridgate.secretEnv" (dict "root" .root "name" (printf "%sINTERNAL_TOKEN" $prefix) "key" .root.Values.secretKeys.internalToken) | nindent 4 }}
    {{- if eq .component "submitter" }}
    {{- /* Image registry credentials (optional keys): pushes of built workflow images */}}
    {{- include "gridgate.secretEnv" (dict "root" .root "name" (printf "%sIMAGE_REGISTRY_USERNAME" $prefix) "key" .root.Values.secretKeys.imageRegistryUsername "optional" true) | nindent 4 }}
    {{- include "gridgate.secretEnv" (dict "root" .root "name" (printf "%sIMAGE_REGISTRY_PASSWORD" $prefix) "key" .root.Values.secretKeys.imageRegistryPassword "optional" true) | nindent 4 }}
    {{- end }}
    - name: {{ $prefix }}HEALTH_PORT
      value: {{ .values.healthPort | quote }}
    {{- $reserved := list "BROKER_URL" "INTERNAL_TOKEN" "HEALTH_PORT" "DIRAC_FACILITIES" }}
    {{- include "gridgate.extraEnv" (dict "env" .values.env "component" .component "reserved" (include "gridgate.prefixed" (dict "prefix" $prefix "names" $reserved) | fromJsonArray)) | nindent 4 }}
  ports:
    - name: metrics
      containerPort: {{ .values.healthPort }}
      protocol: TCP
  startupProbe:
    httpGet: {path: /healthz, port: metrics}
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet: {path: /healthz, port: metrics}
    periodSeconds: 10
    timeoutSeconds: 3
  readinessProbe:
    httpGet: {path: /readyz, port: metrics}
    periodSeconds: 5
    timeoutSeconds: 3
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- include "gridgate.containerSecurityContext" .root | nindent 4 }}
  volumeMounts:
    - {name: tmp, mountPath: /tmp}
    - {name: facility, mountPath: /var/lib/gridgate/facility}
    {{- if eq .component "results" }}
    - {name: results, mountPath: /var/lib/gridgate/results}
    {{- end }}
    - {name: dirac-credential, mountPath: /var/run/secrets/gridgate/dirac, readOnly: true}
    {{- with include "gridgate.diracVolumeMounts" .root | trim }}{{ . | nindent 4 }}{{ end }}
{{- end -}}

{{- define "gridgate.diracCredentialVolume" -}}
- name: dirac-credential
  secret:
    secretName: {{ .Values.existingSecret }}
    optional: true
    defaultMode: 0400
    items:
      - key: {{ .Values.secretKeys.diracCredential }}
        path: credential.pem
{{- end -}}

{{/* names with a prefix, as a JSON array: dict prefix, names */}}
{{- define "gridgate.prefixed" -}}
{{- $out := list }}
{{- range .names }}
{{- $out = append $out (printf "%s%s" $.prefix .) }}
{{- end }}
{{- toJson $out -}}
{{- end -}}

{{/*
The gateway's URL as users and grid worker nodes reach it: gateway.publicUrl, else the
ingress host (https when a tls entry names it); empty without either.
*/}}
{{- define "gridgate.publicUrl" -}}
{{- $gateway := .Values.gateway -}}
{{- if $gateway.publicUrl -}}
{{- $gateway.publicUrl | trimSuffix "/" -}}
{{- else if $gateway.ingress.enabled -}}
{{- $scheme := "http" -}}
{{- range $gateway.ingress.tls -}}
{{- if has $gateway.ingress.host (.hosts | default list) -}}
{{- $scheme = "https" -}}
{{- end -}}
{{- end -}}
{{- printf "%s://%s" $scheme $gateway.ingress.host -}}
{{- end -}}
{{- end -}}

{{/*
The DIRAC client's volumes (dirac.volumes): each entry is a name, a mountPath and one
Kubernetes volume source. Mounted read-only in the workers, and in auth with the
dirac-proxymanager provider.
*/}}
{{- define "gridgate.diracVolumes" -}}
{{- $taken := list "tmp" "facility" "results" "dirac-credential" "ca" "catalogue" }}
{{- range .Values.dirac.volumes }}
{{- if has .name $taken }}
{{- fail (printf "dirac.volumes: the name %q is taken by one of the chart's own volumes (%s)" .name (join ", " $taken)) }}
{{- end }}
{{- $taken = append $taken .name }}
- {{ toYaml (omit . "mountPath") | indent 2 | trim }}
{{- end }}
{{- end -}}

{{- define "gridgate.diracVolumeMounts" -}}
{{- range .Values.dirac.volumes }}
- {name: {{ .name }}, mountPath: {{ .mountPath }}, readOnly: true}
{{- end }}
{{- end -}}
