import { Center, Loader } from "@mantine/core";
import { lazy, Suspense, type ReactNode } from "react";
import { Navigate, Outlet, createBrowserRouter, useLocation } from "react-router";
import { MeProvider, useMeQuery } from "./auth";
import { ErrorNotice } from "./components/ErrorNotice";
import { Shell } from "./components/Shell";

// One chunk per page: the first load carries only what the page shown needs.
const LoginPage = lazy(() => import("./pages/LoginPage"));
const LibraryPage = lazy(() => import("./pages/LibraryPage"));
const PromptPage = lazy(() => import("./pages/PromptPage"));
const NotFoundPage = lazy(() => import("./pages/NotFoundPage"));
const AuditPage = lazy(() => import("./pages/AuditPage"));
const SettingsPage = lazy(() => import("./pages/SettingsPage"));
const DatasetsPage = lazy(() => import("./pages/DatasetsPage"));
const DatasetDetail = lazy(() => import("./pages/DatasetsPage").then((m) => ({ default: m.DatasetDetail })));
const RunsPage = lazy(() => import("./pages/RunsPage"));
const RunDetail = lazy(() => import("./pages/RunsPage").then((m) => ({ default: m.RunDetail })));
const PlaygroundPage = lazy(() => import("./pages/PlaygroundPage"));
const EvalsPage = lazy(() => import("./pages/EvalsPage"));
const EvalRunPage = lazy(() => import("./pages/EvalRunPage"));
const ComparePage = lazy(() => import("./pages/ComparePage"));
const OptimizePage = lazy(() => import("./pages/OptimizePage"));
const OptimizationPage = lazy(() => import("./pages/OptimizationPage"));
const AnnotationsPage = lazy(() => import("./pages/AnnotationsPage"));
const DashboardsPage = lazy(() => import("./pages/DashboardsPage"));
const MonitoringPage = lazy(() => import("./pages/MonitoringPage"));
const AlertsPage = lazy(() => import("./pages/AlertsPage"));
const ExperimentsPage = lazy(() => import("./pages/ExperimentsPage"));
const ExperimentDetail = lazy(() => import("./pages/ExperimentsPage").then((m) => ({ default: m.ExperimentDetail })));
const SearchPage = lazy(() => import("./pages/SearchPage"));
const DuplicatesPage = lazy(() => import("./pages/DuplicatesPage"));
const ApprovalsPage = lazy(() => import("./pages/ApprovalsPage"));
const ApprovalDetail = lazy(() => import("./pages/ApprovalsPage").then((m) => ({ default: m.ApprovalDetail })));

function Loading() {
  return (
    <Center mih={200}>
      <Loader role="status" aria-label="Loading" />
    </Center>
  );
}

function SignedIn({ children }: { children?: ReactNode }) {
  const me = useMeQuery();
  const location = useLocation();
  if (me.isLoading || (me.data === null && me.isFetching)) return <Loading />;
  if (me.error) return <ErrorNotice error={me.error} />;
  if (!me.data) return <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  return (
    <MeProvider me={me.data}>
      <Shell>
        <Suspense fallback={<Loading />}>{children ?? <Outlet />}</Suspense>
      </Shell>
    </MeProvider>
  );
}

function Page({ children }: { children: ReactNode }) {
  return <Suspense fallback={<Loading />}>{children}</Suspense>;
}

// A data router: it lets a page with unsaved changes block navigation (useBlocker).
export const router = createBrowserRouter([
  { path: "/login", element: <Page><LoginPage /></Page> },
  {
    element: <SignedIn />,
    children: [
      { path: "/", element: <LibraryPage /> },
      { path: "/prompts/*", element: <PromptPage /> },
      { path: "/search", element: <SearchPage /> },
      { path: "/search/duplicates", element: <DuplicatesPage /> },
      { path: "/datasets", element: <DatasetsPage /> },
      { path: "/datasets/*", element: <DatasetDetail /> },
      { path: "/runs", element: <RunsPage /> },
      { path: "/runs/:runId", element: <RunDetail /> },
      { path: "/playground", element: <PlaygroundPage /> },
      { path: "/evals", element: <EvalsPage /> },
      { path: "/evals/compare", element: <ComparePage /> },
      { path: "/evals/:runId", element: <EvalRunPage /> },
      { path: "/optimize", element: <OptimizePage /> },
      { path: "/optimize/:optimizationId", element: <OptimizationPage /> },
      { path: "/annotations", element: <AnnotationsPage /> },
      { path: "/dashboards", element: <DashboardsPage /> },
      { path: "/monitoring", element: <MonitoringPage /> },
      { path: "/alerts", element: <AlertsPage /> },
      { path: "/experiments", element: <ExperimentsPage /> },
      { path: "/experiments/:experimentId", element: <ExperimentDetail /> },
      { path: "/approvals", element: <ApprovalsPage /> },
      { path: "/approvals/:requestId", element: <ApprovalDetail /> },
      { path: "/audit", element: <AuditPage /> },
      { path: "/settings", element: <SettingsPage /> },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);
