{{- define "berth.labels" -}}
app.kubernetes.io/name: berth-controller
app.kubernetes.io/part-of: berth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "berth.selector" -}}
app.kubernetes.io/name: berth-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "berth.username" -}}
system:serviceaccount:{{ .Release.Namespace }}:berth-controller
{{- end -}}

{{/* The clientConfig of one webhook; path is the handler's. */}}
{{- define "berth.clientConfig" -}}
clientConfig:
  service:
    name: berth-webhook
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
{{- end -}}

{{- define "berth.webhookAnnotations" -}}
{{- if eq .Values.webhook.certificates "certManager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/berth-webhook
{{- end }}
{{- end -}}
