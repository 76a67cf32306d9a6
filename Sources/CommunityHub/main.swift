import Shared
import EnergyHub
import CarShare
import CMosquitto
print(mosquitto_lib_init())
