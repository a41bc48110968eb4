package controllers_test

import (
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type eventsList struct{ eventsv1.EventList }

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
