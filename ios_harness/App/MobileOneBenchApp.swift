import SwiftUI

/// The benchmark app: lists the bundled models, runs one or all, shows min / median / mean, and
/// exports the JSON report (share sheet + Documents/reports). All logic is in HarnessCore and
/// HarnessCoreML; the views only call them.
@main
struct MobileOneBenchApp: App {
    @StateObject private var model = BenchmarkViewModel()

    var body: some Scene {
        WindowGroup {
            ContentView(model: model)
        }
    }
}
