-- A send to a bare phone number joins the contact's conversation when the
-- store knows exactly one: looked up by contact alone, on any business number.
CREATE INDEX conversations_of_contact ON conversations (contact_phone, phone_number_id);
