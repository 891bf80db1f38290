{{- define "meshplane.name" -}}meshplane{{- end -}}

{{- define "meshplane.labels" -}}
app.kubernetes.io/name: meshplane
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "meshplane.selector" -}}
app.kubernetes.io/name: meshplane
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meshplane.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{ default "meshplane" .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{/* The injected Envoy's image: an aws-appmesh-envoy image (old values) needs App Mesh. */}}
{{- define "meshplane.sidecarImage" -}}
{{- $repo := .Values.sidecar.image.repository -}}
{{- if and (contains "aws-appmesh-envoy" $repo) (not .Values.sidecar.keepAppMeshImage) -}}
envoyproxy/envoy:v1.40.0
{{- else -}}
{{ $repo }}:{{ .Values.sidecar.image.tag }}
{{- end -}}
{{- end -}}
