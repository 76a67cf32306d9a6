#ifndef COMMUNITY_HUB_CMOSQUITTO_SHIM_H
#define COMMUNITY_HUB_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#endif
