import Testing
@testable import CarShare

@Test func carShareModuleLinks() { #expect(CarShareModule.self == CarShareModule.self) }
