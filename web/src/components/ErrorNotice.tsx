import { Alert, Text } from "@mantine/core";
import { ApiError } from "../api/client";

/** Any error from the API as a readable message, with the request id to quote to an operator. */
export function ErrorNotice({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const apiError = error instanceof ApiError ? error : null;
  const message = apiError ? apiError.detail : error instanceof Error ? error.message : String(error);
  return (
    <Alert variant="filled" color="red.9" title={title ?? (apiError ? `Error ${apiError.status}` : "Something went wrong")} role="alert">
      <Text size="sm">{message}</Text>
      {apiError?.fieldErrors.slice(0, 5).map((field, index) => (
        <Text size="sm" key={index}>
          {(field.loc ?? []).filter((part) => part !== "body").join(".")}: {field.msg}
        </Text>
      ))}
      {apiError?.requestId && (
        <Text size="xs" mt={4}>
          Request id: {apiError.requestId}
        </Text>
      )}
    </Alert>
  );
}
